"""MTCNN RNET, PReLU rewritten as relu(x) - w * relu(-x) so ExecuTorch's XNNPACK lowering takes it (the
plain `mtcnn_rnet` records the failure); same shipped weights: `models/mtcnn.py`."""
from models.mtcnn import spec

SPEC = spec("rnet", prelu="rewrite")
