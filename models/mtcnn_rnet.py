"""MTCNN RNET with facenet-pytorch's shipped weights (PyTorch only; Keras twin by transfer): `models/mtcnn.py`."""
from models.mtcnn import spec

SPEC = spec("rnet")
