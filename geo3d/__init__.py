"""geo3d: self-supervised 3D and geometry perception on one mmengine runner and registry."""
__version__ = '0.1.0'
