"""nnU-Net's 3d_fullres plans for a CT dataset, written out without a dataset.

Reduced to what :func:`~nnunet_boundary.planning.templates.apply_template` and the trainers read,
with nnU-Net's default PlainConvUNet (widths 32-320, two convolutions per stage, LeakyReLU,
instance norm). For checks and tests that need plans but no data: the GPU check, speed runs,
unit tests of the trainer hooks.
"""
from typing import Sequence

from nnunet_boundary.planning.templates import PLANS_NAME


def nnunet_ct_plans(spacing: Sequence[float] = (1.0, 1.0, 1.0), median_shape: Sequence[int] = (300, 400, 400),
                    batch_dice: bool = True, dataset_name: str = 'Dataset000_Reference') -> dict:
    return {
        'dataset_name': dataset_name, 'plans_name': PLANS_NAME, 'transpose_forward': [0, 1, 2],
        'transpose_backward': [0, 1, 2], 'image_reader_writer': 'SimpleITKIO', 'label_manager': 'LabelManager',
        'original_median_spacing_after_transp': list(spacing), 'original_median_shape_after_transp': list(median_shape),
        'foreground_intensity_properties_per_channel': {},
        'configurations': {'3d_fullres': {
            'data_identifier': 'nnUNetPlans_3d_fullres', 'preprocessor_name': 'DefaultPreprocessor',
            'batch_size': 2, 'patch_size': [128, 128, 128], 'median_image_size_in_voxels': list(median_shape),
            'spacing': list(spacing), 'normalization_schemes': ['CTNormalization'], 'use_mask_for_norm': [False],
            'batch_dice': batch_dice,
            'architecture': {
                'network_class_name': 'dynamic_network_architectures.architectures.unet.PlainConvUNet',
                'arch_kwargs': {'n_stages': 6, 'features_per_stage': [32, 64, 128, 256, 320, 320],
                                'conv_op': 'torch.nn.modules.conv.Conv3d', 'kernel_sizes': [[3, 3, 3]] * 6,
                                'strides': [[1, 1, 1]] + [[2, 2, 2]] * 5, 'n_conv_per_stage': [2] * 6,
                                'n_conv_per_stage_decoder': [2] * 5, 'conv_bias': True,
                                'norm_op': 'torch.nn.modules.instancenorm.InstanceNorm3d',
                                'norm_op_kwargs': {'eps': 1e-05, 'affine': True}, 'dropout_op': None,
                                'dropout_op_kwargs': None, 'nonlin': 'torch.nn.LeakyReLU',
                                'nonlin_kwargs': {'inplace': True}},
                '_kw_requires_import': ['conv_op', 'norm_op', 'dropout_op', 'nonlin']}}},
    }
