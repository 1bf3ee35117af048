"""Classes as nnU-Net's plans name them.

A plans file names the network (``architecture.network_class_name``) and its layer types (``conv_op``,
``norm_op``, ...) by dotted import path, which nnU-Net resolves with ``pydoc.locate``; so do we.
"""


def class_path(cls: type) -> str:
    """``cls``'s dotted import path, e.g. ``'torch.nn.modules.conv.Conv3d'`` for ``torch.nn.Conv3d``."""
    return f'{cls.__module__}.{cls.__name__}'
