from .seg_head import LinearSegHead

__all__ = ['LinearSegHead']
