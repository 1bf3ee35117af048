"""The nnU-Net internals listed in docs/nnunet_internals.md, checked against the installed nnU-Net: a
failure here means a new nnU-Net release changed something this package relies on."""
import contextlib
import hashlib
import inspect
import io

import pytest
import torch
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.plan_and_preprocess_api import plan_experiment_dataset
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

from nnunet_boundary.planning.fingerprints import write_fingerprint_dataset
from nnunet_boundary.planning.templates import apply_template, load_template
from test_planning import nnunet_like_plans
from test_trainers import DATASET_JSON

SEE = "see docs/nnunet_internals.md, row "

#: sha256 (first 16 hex digits) of the source of methods whose body we copy or override in detail
COPIED_SOURCES = {
    (nnUNetTrainer, 'get_dataloaders'): ('5f59e2b907cfa2d1', 'TumorWeightedSampling.get_dataloaders is a copy of it: '
                                                             're-copy it from the new nnU-Net'),
    (nnUNetDataLoader, 'get_bbox'): ('25263f7173ae246b', 'TumorWeightedDataLoader.get_bbox relies on its '
                                                         'force_fg/overwrite_class semantics: re-check them'),
    (ExperimentPlanner, 'get_plans_for_configuration'): (
        'cc77fd8adaac53c8', 'BoundaryPlanner relies on its patch loop (the kwargs it passes to '
                            'static_estimate_VRAM_usage, its loop condition and reference): re-check them'),
    (ExperimentPlanner, 'plan_experiment'): ('2d5af564919b8c67', 'BoundaryPlanner relies on it planning 3d_fullres '
                                                                 'and calling save_plans: re-check'),
}


@pytest.mark.parametrize('owner, name', list(COPIED_SOURCES))
def test_copied_nnunet_methods_are_unchanged(owner, name):
    digest, what_to_do = COPIED_SOURCES[owner, name]
    source = inspect.getsource(getattr(owner, name))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, \
        f"nnU-Net changed {owner.__name__}.{name}: {what_to_do} ({SEE}'{owner.__name__}.{name}')"


SIGNATURES = [
    (nnUNetDataLoader.get_bbox, ['self', 'data_shape', 'force_fg', 'class_locations', 'overwrite_class', 'verbose']),
    (nnUNetDataLoader.__init__, ['self', 'data', 'batch_size', 'patch_size', 'final_patch_size', 'label_manager',
                                 'oversample_foreground_percent', 'sampling_probabilities', 'pad_sides',
                                 'probabilistic_oversampling', 'transforms']),
    (nnUNetTrainer.__init__, ['self', 'plans', 'configuration', 'fold', 'dataset_json', 'device']),
    (nnUNetTrainer.build_network_architecture, ['plans_manager', 'configuration_manager', 'num_input_channels',
                                                'num_output_channels', 'enable_deep_supervision']),
    (ConfigurationManager.__init__, ['self', 'configuration_dict']),
    (MemoryEfficientSoftDiceLoss.__init__, ['self', 'apply_nonlin', 'batch_dice', 'do_bg', 'smooth', 'ddp']),
    (PolyLRScheduler.__init__, ['self', 'optimizer', 'initial_lr', 'max_steps', 'exponent', 'current_step']),
    (ExperimentPlanner.__init__, ['self', 'dataset_name_or_id', 'gpu_memory_target_in_gb', 'preprocessor_name',
                                  'plans_name', 'overwrite_target_spacing', 'suppress_transpose']),
    (ExperimentPlanner.static_estimate_VRAM_usage, ['patch_size', 'input_channels', 'output_channels',
                                                    'arch_class_name', 'arch_kwargs', 'arch_kwargs_req_import']),
    (ExperimentPlanner.get_plans_for_configuration, ['self', 'spacing', 'median_shape', 'data_identifier',
                                                     'approximate_n_voxels_dataset', '_cache']),
    (ExperimentPlanner.save_plans, ['self', 'plans']),
    (plan_experiment_dataset, ['dataset_id', 'experiment_planner_class', 'gpu_memory_target_in_gb',
                               'preprocess_class_name', 'overwrite_target_spacing', 'overwrite_plans_name']),
    (get_network_from_plans, ['arch_class_name', 'arch_kwargs', 'arch_kwargs_req_import', 'input_channels',
                              'output_channels', 'allow_init', 'deep_supervision']),
    (nnUNetPredictor.manual_initialization, ['self', 'network', 'plans_manager', 'configuration_manager',
                                             'parameters', 'dataset_json', 'trainer_name',
                                             'inference_allowed_mirroring_axes']),
]


@pytest.mark.parametrize('function, parameters', SIGNATURES, ids=lambda v: getattr(v, '__qualname__', ''))
def test_nnunet_functions_we_call_keep_their_parameters(function, parameters):
    assert list(inspect.signature(function).parameters) == parameters, \
        f"nnU-Net changed the parameters of {function.__qualname__} ({SEE}naming it)"


TRAINER_METHODS = ['_build_loss', '_get_deep_supervision_scales', 'configure_rotation_dummyDA_mirroring_and_inital_'
                   'patch_size', 'get_training_transforms', 'get_validation_transforms', 'get_tr_and_val_datasets',
                   'do_split', '_set_batch_size_and_oversample', 'perform_actual_validation', 'save_checkpoint',
                   'configure_optimizers', 'initialize', 'set_deep_supervision_enabled', '_do_i_compile']
TRAINER_ATTRIBUTES = ['inference_allowed_mirroring_axes', 'enable_deep_supervision', 'oversample_foreground_percent',
                      'probabilistic_oversampling', 'num_epochs', 'num_iterations_per_epoch',
                      'num_val_iterations_per_epoch', 'save_every', 'initial_lr', 'disable_checkpointing',
                      'local_rank', 'is_ddp', 'is_cascaded', 'my_init_kwargs']


def test_trainer_methods_and_attributes_we_use_exist(monkeypatch, tmp_path):
    monkeypatch.setenv('nnUNet_results', str(tmp_path))
    plans = dict(apply_template(nnunet_like_plans(), load_template('cpu_smoke')), continue_training=False)
    trainer = nnUNetTrainer(plans, '3d_fullres_baseline', 0, DATASET_JSON, torch.device('cpu'))
    assert 'continue_training' not in plans, f"nnU-Net no longer pops 'continue_training' from the plans ({SEE}" \
                                             f"'plans key continue_training')"
    missing = [m for m in TRAINER_METHODS if not callable(getattr(trainer, m, None))]
    missing += [a for a in TRAINER_ATTRIBUTES if not hasattr(trainer, a)]
    assert not missing, f"nnUNetTrainer no longer has {missing} ({SEE}naming them)"
    assert set(trainer.my_init_kwargs) == {'plans', 'configuration', 'fold', 'dataset_json', 'device'}


def test_initialize_looks_up_infer_dataset_class_where_initialized_trainer_patches_it():
    from nnunet_boundary.training import initialization
    module_name, name = initialization.INFER_DATASET_CLASS.rsplit('.', 1)
    module = __import__(module_name, fromlist=[name])
    assert callable(getattr(module, name, None)) and name in inspect.getsource(nnUNetTrainer.initialize), \
        f"nnUNetTrainer.initialize no longer calls {initialization.INFER_DATASET_CLASS} ({SEE}'infer_dataset_class')"


def test_region_loss_exposes_scale_weights_and_bce_weight_and_skips_zero_weights(monkeypatch, tmp_path):
    monkeypatch.setenv('nnUNet_results', str(tmp_path))
    plans = dict(apply_template(nnunet_like_plans(), load_template('cpu_smoke')), continue_training=False)
    trainer = nnUNetTrainer(plans, '3d_fullres_baseline', 0, DATASET_JSON, torch.device('cpu'))
    loss = trainer._build_loss()
    assert isinstance(loss, DeepSupervisionWrapper) and hasattr(loss, 'weight_factors') and \
        hasattr(loss.loss, 'weight_ce'), f"nnU-Net's region loss changed its structure ({SEE}'_build_loss')"
    calls = []
    wrapper = DeepSupervisionWrapper(lambda x, y: calls.append(x) or x, (1.0, 0.0))
    wrapper([torch.tensor(1.0), torch.tensor(2.0)], [None, None])
    assert len(calls) == 1, f"DeepSupervisionWrapper evaluates zero-weight terms now ({SEE}'DeepSupervisionWrapper')"


PLANNER_ATTRIBUTES = ['UNet_reference_val_3d', 'UNet_reference_val_2d', 'UNet_reference_val_corresp_GB',
                      'UNet_reference_val_corresp_bs_3d', 'UNet_reference_val_corresp_bs_2d', 'UNet_min_batch_size',
                      'UNet_vram_target_GB', 'UNet_max_features_2d', 'UNet_max_features_3d', 'max_dataset_covered',
                      'lowres_creation_threshold', 'dataset_json', 'dataset_name', 'plans_identifier']


def test_experiment_planner_attributes_we_set_and_read_exist_and_its_loop_calls_our_estimate(monkeypatch, tmp_path):
    monkeypatch.setenv('nnUNet_raw', str(tmp_path / 'raw'))
    monkeypatch.setenv('nnUNet_preprocessed', str(tmp_path / 'pre'))
    write_fingerprint_dataset(tmp_path / 'raw', tmp_path / 'pre', 'Dataset503_X', (1.0, 1.0, 1.0), (64, 96, 96), 10)
    planner = ExperimentPlanner(503, 8)
    missing = [a for a in PLANNER_ATTRIBUTES if not hasattr(planner, a)]
    assert not missing, f"nnU-Net's ExperimentPlanner no longer has {missing} ({SEE}'ExperimentPlanner.__init__')"
    calls = []

    def estimate(patch_size, input_channels, output_channels, arch_class_name, arch_kwargs, arch_kwargs_req_import):
        calls.append(set(arch_kwargs))
        return 1  # bytes: everything fits
    planner.static_estimate_VRAM_usage = estimate
    with contextlib.redirect_stdout(io.StringIO()):
        planner.plan_experiment()
    assert calls and all({'n_stages', 'kernel_sizes', 'strides', 'conv_op', 'norm_op', 'norm_op_kwargs'} <= c
                         for c in calls), \
        f"get_plans_for_configuration no longer estimates through self.static_estimate_VRAM_usage with the " \
        f"topology in arch_kwargs ({SEE}'ExperimentPlanner.get_plans_for_configuration')"


def test_plain_conv_unet_exposes_the_encoder_and_decoder_the_boundary_stream_reads():
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    from test_network import _plain_kwargs
    network = PlainConvUNet(**_plain_kwargs(), deep_supervision=True)
    attributes = ('output_channels', 'strides', 'kernel_sizes', 'conv_op', 'conv_bias', 'norm_op', 'norm_op_kwargs',
                  'nonlin', 'nonlin_kwargs')
    missing = [a for a in attributes if not hasattr(network.encoder, a)]
    assert not missing and network.encoder.return_skips and network.decoder.num_classes == 2, \
        f"PlainConvUNet's encoder or decoder changed: {missing} ({SEE}'PlainConvUNet')"
    skips = network.encoder(torch.randn(1, 1, 16, 16, 16))
    shapes = [tuple(o.shape[2:]) for o in network.decoder(skips)]
    assert shapes == [(16, 16, 16), (8, 8, 8)], f"UNetDecoder's outputs are no longer full resolution first " \
                                                f"({SEE}'PlainConvUNet')"


def test_unet_decoder_passes_on_what_its_segmentation_heads_return():
    """PlainConvUNetWithEdgeHeads replaces each of UNetDecoder's ``seg_layers`` by a head returning (regions,
    edges); the decoder must call ``seg_layers[s]`` on stage s's features and return the results unchanged."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    from test_network import _plain_kwargs

    class Marker(torch.nn.Module):
        def __init__(self, stage: int):
            super().__init__()
            self.stage = stage

        def forward(self, features):
            return self.stage, tuple(features.shape[2:])

    network = PlainConvUNet(**_plain_kwargs(), deep_supervision=True)
    network.decoder.seg_layers = torch.nn.ModuleList(Marker(s) for s in range(len(network.decoder.seg_layers)))
    skips = network.encoder(torch.randn(1, 1, 16, 16, 16))
    message = f"UNetDecoder no longer returns its seg_layers' outputs as they are ({SEE}'PlainConvUNet')"
    assert network.decoder(skips) == [(1, (16, 16, 16)), (0, (8, 8, 8))], message
    network.decoder.deep_supervision = False
    assert network.decoder(skips) == (1, (16, 16, 16)), message
