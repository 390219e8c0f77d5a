"""The petbreeds web demo: upload a pet photo, get its breed."""
