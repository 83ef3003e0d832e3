"""coset_client: the Python client of cosetd (see client.py)."""

from coset_client.client import (DEFAULT_ADDRESS, Client, CosetError, EncodeStats, TensorInfo,  # noqa: F401
                                 codec_config)
from coset_client.shm import SharedRegion, ShmError  # noqa: F401
