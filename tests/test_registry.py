"""geo3d's registries are children of mmengine's roots and import their modules lazily."""
import subprocess
import sys

import mmengine.registry as root

import geo3d.registry as reg


def test_every_mmengine_root_has_a_geo3d_child():
    roots = {name: obj for name, obj in vars(root).items()
             if isinstance(obj, root.Registry) and name.isupper() and obj.parent is None
             and name not in ('DefaultScope',)}
    missing = [n for n in roots if not hasattr(reg, n)]
    assert not missing, f'no geo3d child for {missing}'
    for name in roots:
        child = getattr(reg, name)
        assert child.parent is roots[name], name
        assert child.scope == 'geo3d'


def test_lazy_registration_from_config_in_fresh_process():
    """A config with default_scope='geo3d' finds geo3d modules without importing them first."""
    code = (
        "from mmengine.registry import MODELS, METRICS, DefaultScope\n"
        "DefaultScope.get_instance('t', scope_name='geo3d')\n"
        "m = METRICS.build(dict(type='SemSegMetric', num_classes=3))\n"
        "h = MODELS.build(dict(type='LinearSegHead', in_channels=4, num_classes=3))\n"
        "print(type(m).__module__, type(h).__module__)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'geo3d.evaluation.seg' in out.stdout and 'geo3d.models.heads.seg_head' in out.stdout
