import os

from nnunet_boundary.environment import TRAINER_DIR, with_trainer_dir


def test_trainer_dir_goes_first_once_and_other_entries_stay():
    other = '/opt/my_trainers'
    value = with_trainer_dir(os.pathsep.join([other, str(TRAINER_DIR), '']))
    assert value.split(os.pathsep) == [str(TRAINER_DIR), other]
    assert with_trainer_dir('') == str(TRAINER_DIR)
