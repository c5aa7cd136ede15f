"""Helpers of the saving tests: the datasets of a `.keras` file's model.weights.h5."""
import io
import zipfile


def weight_keys(path):
    """Sorted dataset paths of a `.keras` file's weights ("layers/dense/vars/0", "optimizer/vars/1", ...)."""
    import h5py
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h5:
        keys = []
        h5.visititems(lambda name, node: keys.append(name) if isinstance(node, h5py.Dataset) else None)
    return sorted(keys)
