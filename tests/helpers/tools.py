"""Load the command-line tools (tools/*.py, not a package) as modules for in-process tests."""
import importlib.util
import os.path as osp
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TOY_CONFIG_HEAD = f"""
_base_ = [{osp.join(ROOT, 'configs/_base_/default_runtime.py')!r}]
custom_imports = dict(imports=['tests.helpers.toy_runner'], allow_failed_imports=False)
model = dict(type='ToyResumeModel')
train_dataloader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                        collate_fn=dict(type='default_collate'), dataset=dict(type='ToyResumeDataset'))
"""


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a fresh module (call its ``main(argv)``)."""
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
