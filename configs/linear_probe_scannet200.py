# Linear probe on ScanNet200 (MSM Table 15: same recipe as ScanNet20, 200 epochs, 2 warm-up).
_base_ = ['./linear_probe_scannet.py']

label_set = 'scannet200'
num_classes = 200
model = dict(num_classes=num_classes)
train_dataloader = dict(dataset=dict(label_set=label_set))
val_dataloader = dict(dataset=dict(label_set=label_set))
test_dataloader = val_dataloader
