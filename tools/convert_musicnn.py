"""Convert musicnn's shipped TensorFlow checkpoints to the .npz files consentune.organize.autotag reads.

Run once, in a throw-away environment that has TensorFlow and the musicnn wheel
(nothing here is a runtime dependency of consentune):

    python3.11 -m venv /tmp/musicnn-venv
    /tmp/musicnn-venv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/musicnn-venv/bin/pip install tensorflow-cpu librosa
    /tmp/musicnn-venv/bin/python tools/convert_musicnn.py src/consentune/organize/data

Only the trained variables are kept (Adam slots and step counters are dropped),
stored as float16 to keep the repository small; the labels ride along as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

MODELS = {"mtt": "MTT_musicnn", "msd": "MSD_musicnn"}


def convert(out_dir: Path) -> None:
    import musicnn
    import tensorflow as tf
    from musicnn import configuration

    package = Path(musicnn.__file__).parent
    labels = {"mtt": configuration.MTT_LABELS, "msd": configuration.MSD_LABELS}
    for short, folder in MODELS.items():
        # the checkpoint's files are named ".index"/".data-*": the prefix is the folder itself
        reader = tf.compat.v1.train.NewCheckpointReader(str(package / folder) + "/")
        names = sorted(n for n in reader.get_variable_to_shape_map() if "Adam" not in n and "power" not in n)
        arrays = {name: reader.get_tensor(name).astype(np.float16) for name in names}
        arrays["labels"] = np.frombuffer(json.dumps(labels[short]).encode(), dtype=np.uint8)
        target = out_dir / f"musicnn_{short}.npz"
        np.savez_compressed(target, **arrays)
        params = sum(int(np.prod(a.shape)) for n, a in arrays.items() if n != "labels")
        print(f"{folder}: {len(names)} variables, {params:,} parameters -> {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    convert(Path(sys.argv[1] if len(sys.argv) > 1 else "src/consentune/organize/data"))
