# A classroom server for the petbreeds demo: the web demo on port 7860, behind a login, on a CPU.
#
#   docker build -t petbreeds .
#   docker run -d --name petbreeds -p 7860:7860 -e PETBREEDS_AUTH=teacher:s3cret \
#       -v petbreeds-cache:/data petbreeds
#
# Students open http://<this machine>:7860 and log in. The cache (PETBREEDS_HOME: the pet photos the
# Train tab needs) lives on the volume /data, so it survives a new image. Fill it once, with internet:
#
#   docker run --rm -v petbreeds-cache:/data petbreeds python -m engine.datasets sample
#
# After that nothing is fetched at run time: the model, its ImageNet check, the pretrained weights
# for training and the example photos are in the image. Without the photos the demo still serves
# tabs 1-3 and says how to switch training on. A Hugging Face Space can run this same file: see
# "A classroom server and a Space" in README.md.
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 \
    PETBREEDS_HOME=/data \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_TEMP_DIR=/tmp/gradio \
    MPLCONFIGDIR=/tmp/matplotlib

# CPU-only PyTorch from the PyTorch index: the default wheels bring gigabytes of CUDA libraries
# that a classroom CPU server never uses. `pip install .` then keeps these (they satisfy its pins).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.6" "torchvision>=0.21"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY demo demo
COPY lessons lessons
# `pip install .` brings OpenVINO too on x86-64 (bf16 where the CPU has AMX; engine/serving/openvino_runtime.py)
RUN pip install . \
    && useradd --create-home --uid 1000 petbreeds \
    && mkdir -p /data \
    && chown petbreeds /data /app

# uid 1000, as Hugging Face Spaces run containers
USER petbreeds
VOLUME /data
EXPOSE 7860

# A classroom server asks for a login: PETBREEDS_AUTH=user:password (the demo's --auth reads it).
# Without one the container stops at once and says so, rather than open the demo to the network.
CMD ["sh", "-c", "if [ -z \"$PETBREEDS_AUTH\" ]; then echo 'error: set PETBREEDS_AUTH=user:password (docker run -e PETBREEDS_AUTH=teacher:s3cret ...): a classroom server asks for a login' >&2; exit 2; fi; exec python -m demo --host 0.0.0.0"]
