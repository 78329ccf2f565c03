"""The pipeline's steps, one module per task id: plain Python, runnable from the command line."""
