# DCLW (DCL with von Mises-Fisher weighting of the positives, sigma 0.5) on the digits demo.
_base_ = ['./dcl_digits.py']

model = dict(loss=dict(type='DCLWLoss', temperature=0.2, sigma=0.5, gather_distributed=True))
