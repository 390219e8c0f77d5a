"""Two CPU processes under torchrun with DistributedDataParallel: the replicas stay equal."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, sys, torch, torch.distributed as dist
    from pathlib import Path
    from engine.learning.callbacks import Callback
    from engine.data import DataLoaders
    from engine.learning.distributed import DistributedTrainer, rank, setup_distributed, world_size
    from engine.learning.learner import Learner
    from engine.models import create_model

    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    setup_distributed()
    torch.manual_seed(rank())  # different initial weights on purpose: DDP must make them equal
    dls = DataLoaders.from_name_regex(folder, valid_pct=0.25, presize=40, size=32, batch_size=4, seed=0,
                                      device="cpu")
    learn = Learner(dls, create_model("resnet18", n_classes=dls.n_classes, pretrained=False), progress=False)

    class Seen(Callback):
        def __init__(self):
            self.labels = []

        def before_batch(self, learn):
            if learn.training:
                self.labels.append(learn.yb.tolist())

    seen = Seen()
    before = torch.cat([p.detach().flatten() for p in learn.model.parameters()]).clone()
    learn.fit(2, lr=1e-3, cbs=[DistributedTrainer(), seen])
    flat = torch.cat([p.detach().flatten() for p in learn.model.parameters()])
    everyone = [torch.zeros_like(flat) for _ in range(world_size())]
    dist.all_gather(everyone, flat)
    labels = [None] * world_size()
    dist.all_gather_object(labels, seen.labels)
    if rank() == 0:
        out.write_text(json.dumps({
            "world": world_size(),
            "max_diff": max(float((e - everyone[0]).abs().max()) for e in everyone),
            "changed": float((flat - before).abs().max()),
            "batches": [len(l) for l in labels],
            "labels": labels,
            "unwrapped": type(learn.model).__name__,
        }))
    dist.barrier()  # both ranks are done talking before either tears its side down
    dist.destroy_process_group()
    # Leave without running C++ static destructors: gloo's threads made one of them abort now and then
    # ("terminate called without an active exception", SIGABRT) after everything above had succeeded.
    import os
    sys.stdout.flush()
    os._exit(0)
''')


def test_two_processes_stay_in_sync(tmp_path):
    from engine.testing import write_synthetic_pets

    write_synthetic_pets(tmp_path / "img", breeds=["pug", "beagle", "Bengal", "boxer"], n_per_breed=6,
                         size=(48, 40), seed=8)
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path / "img"), str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world"] == 2
    assert result["max_diff"] == 0.0  # identical replicas after training ...
    assert result["changed"] > 0  # ... that did train
    assert result["unwrapped"] == "Classifier"
    # 18 training photos, 2 processes, batch 4: each rank gets 9 photos -> 2 full batches per epoch
    assert result["batches"] == [4, 4]
    first_epoch = [sum(r[:2], []) for r in result["labels"]]
    assert first_epoch[0] != first_epoch[1]  # the ranks saw different shards
