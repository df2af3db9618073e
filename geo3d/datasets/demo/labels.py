"""Label and colour metadata of the demo generator.

Rows of the real ``scannetv2-labels.combined.tsv`` for every raw category the demo uses, the
ScanNet nyu40 colour palette, per-class base colours and ScanNet ``sceneType`` strings.
"""
from __future__ import annotations

import numpy as np

from geo3d.datasets.scannet_constants import CLASS_LABELS_200, VALID_CLASS_IDS_200

# ------------------------------------------------------------------------------------------------
# Label metadata (rows copied from the real scannetv2-labels.combined.tsv)

TSV_COLUMNS: tuple[str, ...] = (
    'id', 'raw_category', 'category', 'count', 'nyu40id', 'eigen13id', 'nyuClass', 'nyu40class',
    'eigen13class', 'ModelNet40', 'ModelNet10', 'ShapeNetCore55', 'synsetoffset', 'wnsynsetid',
    'wnsynsetkey', 'mpcat40', 'mpcat40index')

_TSV_TEXT = """\
1	wall	wall	8277	1	12	wall	wall	Wall					n04546855	wall.n.01	wall	1
2	chair	chair	4646	5	4	chair	chair	Chair	chair	chair	chair	3001627	n03001627	chair.n.01	chair	3
22	book	book	318	23	2	book	books	Books					n02870526	book.n.11	objects	39
3	floor	floor	1553	2	5	floor	floor	Floor					n03365592	floor.n.01	floor	2
5	door	door	1483	8	12	door	door	Wall	door				n03221720	door.n.01	door	4
1163	object	object	1313	40	7		otherprop	Objects							objects	39
16	window	window	1209	9	13	window	window	Window					n04587648	window.n.01	window	9
4	table	table	1170	7	10	table	table	Table	table	table	table	4379243	n04379243	table.n.02	table	5
56	trash can	trash can	1090	39	6	garbage bin	otherfurniture	Furniture			trash_bin	2747177	n02747177	ashcan.n.01	objects	39
13	pillow	pillow	937	18	7	pillow	pillow	Objects			pillow	3938244	n03938244	pillow.n.01	cushion	8
15	picture	picture	862	11	8	picture	picture	Picture					n03931044	picture.n.01	picture	6
41	ceiling	ceiling	806	22	3	ceiling	ceiling	Ceiling					n02990373	ceiling.n.01	ceiling	17
26	box	box	775	29	7	box	box	Objects					n02883344	box.n.01	objects	39
7	cabinet	cabinet	731	3	6	cabinet	cabinet	Furniture			cabinet	2933112	n02933112	cabinet.n.01	cabinet	7
9	desk	desk	680	14	10	desk	desk	Table	desk	desk	table	4379243	n03179701	desk.n.01	table	5
10	office chair	office chair	595	5	4	chair	chair	Chair	chair	chair	chair	3001627	n04373704	swivel_chair.n.01	chair	3
6	couch	couch	502	6	9	sofa	sofa	Sofa	sofa	sofa	sofa	4256520	n04256520	sofa.n.01	sofa	10
14	sink	sink	488	34	7	sink	sink	Objects	sink				n04223580	sink.n.01	sink	15
28	lamp	lamp	419	35	7	lamp	lamp	Objects	lamp		lamp	3636649	n03636649	lamp.n.02	lighting	28
11	bed	bed	370	4	1	bed	bed	Bed	bed	bed	bed	2818832	n02818832	bed.n.01	bed	11
18	bookshelf	bookshelf	360	10	6	bookshelf	bookshelf	Furniture	bookshelf		bookshelf	2871439	n02871439	bookshelf.n.01	shelving	31
21	curtain	curtain	347	16	13	curtain	curtain	Window	curtain				n03151077	curtain.n.01	curtain	12
96	radiator	radiator	322	39	6	radiator	otherfurniture	Furniture					n04041069	radiator.n.02	misc	40
29	kitchen cabinet	kitchen cabinet	310	3	6	cabinet	cabinet	Furniture					n02933112	cabinet.n.01	cabinet	7
23	armchair	armchair	281	5	4	chair	chair	Chair	chair	chair	chair	3001627	n02738535	armchair.n.01	chair	3
24	coffee table	coffee table	258	7	10	coffee table	table	Table	table	table	table	4379243	n03063968	coffee_table.n.01	table	5
17	toilet	toilet	256	33	7	toilet	toilet	Objects	toilet	toilet			n04446276	toilet.n.01	toilet	18
34	nightstand	nightstand	224	32	6	night stand	night stand	Furniture	night_stand	night_stand			n03015254	chest_of_drawers.n.01	chest_of_drawers	13
33	tv	tv	219	25	11	television	television	TV			tv or monitor	3211117	n03211117	display.n.06	tv_monitor	22
27	refrigerator	refrigerator	154	24	6	refridgerator	refridgerator	Furniture					n04070727	refrigerator.n.01	appliances	37
44	end table	end table	147	7	10	table	table	Table	table	table	table	4379243	n04379243	table.n.02	table	5
55	shower curtain	shower curtain	144	28	7	shower curtain	shower curtain	Objects	curtain				n04209239	shower_curtain.n.01	curtain	12
42	bathtub	bathtub	144	36	7	bathtub	bathtub	Objects	bathtub	bathtub	tub	2808440	n02808440	bathtub.n.01	bathtub	25
159	kitchen counter	kitchen counter	140	12	6	counter	counter	Furniture	table	table	table	4379243	n03116530	counter.n.01	counter	26
67	ottoman	ottoman	111	39	6	ottoman	otherfurniture	Furniture	stool				n03380724	footstool.n.01	stool	19
35	counter	counter	104	12	6	counter	counter	Furniture	table	table	table	4379243	n03116530	counter.n.01	counter	26
1164	bathroom vanity	bathroom vanity	126	3	6	cabinet	cabinet	Furniture			cabinet	2933112	n02933112	cabinet.n.01	table	5
"""
TSV_ROWS: dict[str, tuple[str, ...]] = {}
for _line in _TSV_TEXT.splitlines():
    _cells = tuple(_line.split('\t'))
    assert len(_cells) == len(TSV_COLUMNS), _line
    TSV_ROWS[_cells[1]] = _cells
# raw category -> (tsv id, nyu40 id)
RAW_IDS: dict[str, tuple[int, int]] = {k: (int(v[0]), int(v[4])) for k, v in TSV_ROWS.items()}
for _name, (_id, _) in RAW_IDS.items():  # the tsv id of a ScanNet200 class is its benchmark id
    if _name in CLASS_LABELS_200:
        assert VALID_CLASS_IDS_200[CLASS_LABELS_200.index(_name)] == _id, _name

# ScanNet BenchmarkScripts util.create_color_palette(): nyu40 id -> RGB (0 = unannotated)
NYU40_PALETTE: np.ndarray = np.array([
    (0, 0, 0), (174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34),
    (140, 86, 75), (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189),
    (196, 156, 148), (23, 190, 207), (178, 76, 76), (247, 182, 210), (66, 188, 102),
    (219, 219, 141), (140, 57, 197), (202, 185, 52), (51, 176, 203), (200, 54, 131),
    (92, 193, 61), (78, 71, 183), (172, 114, 82), (255, 127, 14), (91, 163, 138), (153, 98, 156),
    (140, 153, 101), (158, 218, 229), (100, 125, 154), (178, 127, 135), (120, 185, 128),
    (146, 111, 194), (44, 160, 44), (112, 128, 144), (96, 207, 209), (227, 119, 194),
    (213, 92, 176), (94, 106, 211), (82, 84, 163), (100, 85, 144)], dtype=np.uint8)

# Base colours per material / class (RGB). Several classes share materials (wood, white, grey),
# so colour alone does not identify a class.
_WOOD = [(150, 108, 70), (122, 86, 58), (176, 136, 94), (96, 70, 52)]
_WHITE = [(226, 224, 218), (212, 210, 204), (236, 234, 230)]
_DARK = [(62, 58, 56), (48, 48, 52), (84, 80, 76)]
_GREY = [(150, 150, 152), (122, 124, 128), (176, 174, 170)]
_FABRIC = [(120, 122, 128), (112, 74, 56), (72, 92, 132), (188, 172, 148), (132, 52, 48),
           (82, 112, 84)]
PALETTES: dict[str, list[tuple[int, int, int]]] = {
    'wall': [(214, 208, 196), (196, 192, 184), (186, 196, 206), (222, 214, 190), (200, 206, 192)],
    'floor': _WOOD[:3] + [(128, 128, 132), (168, 160, 150), (94, 84, 78)],
    'ceiling': [(232, 232, 228)],
    'door': _WOOD + [(222, 218, 210), (160, 160, 166)],
    'window': [(150, 170, 186), (122, 142, 152), (206, 218, 228), (100, 112, 120)],
    'curtain': [(176, 62, 58), (70, 90, 140), (200, 190, 160), (90, 120, 90), (220, 216, 206)],
    'cabinet': _WOOD + _WHITE[:2] + _DARK[:1],
    'bed': [(228, 228, 234), (150, 168, 200), (200, 180, 150), (176, 120, 120)],
    'chair': _DARK + _WOOD[:2] + [(150, 50, 48), (60, 80, 130)],
    'sofa': _FABRIC,
    'table': _WOOD + _WHITE[:1] + _DARK[:1],
    'desk': _WOOD[:3] + _WHITE[:2] + [(90, 90, 94)],
    'bookshelf': _WOOD + _WHITE[:1],
    'counter': [(90, 90, 96), (230, 228, 222), (160, 150, 140), (60, 60, 62)],
    'refrigerator': [(236, 236, 236), (184, 184, 190), (60, 60, 64)],
    'toilet': [(240, 240, 240), (230, 232, 236)],
    'sink': [(238, 238, 240), (178, 180, 186)],
    'bathtub': [(238, 238, 236), (228, 230, 234)],
    'shower curtain': [(220, 226, 236), (236, 236, 236), (170, 196, 210), (214, 190, 200)],
    'trash can': [(80, 80, 86), (60, 100, 160), (172, 172, 172), (60, 110, 70)],
    'radiator': [(232, 232, 230), (200, 200, 200)],
    'ottoman': _FABRIC,
    'nightstand': _WOOD + _WHITE[:1],
    'lamp': [(232, 220, 190), (240, 240, 236), (60, 60, 60)],
    'tv': [(24, 24, 28), (40, 40, 44)],
    'box': [(170, 132, 92), (190, 160, 120), (220, 220, 214)],
    'pillow': [(236, 236, 236), (200, 190, 170), (150, 168, 200)],
    'book': [(170, 40, 40), (40, 70, 140), (40, 110, 60), (220, 200, 60), (30, 30, 30),
             (220, 220, 214)],
    'object': [(120, 120, 120), (200, 80, 40), (40, 140, 160), (230, 230, 230)],
    'metal': [(170, 170, 176), (60, 60, 64)],
}

SCENE_TYPES: dict[str, str] = {
    'bedroom': 'Bedroom / Hotel', 'living': 'Living room / Lounge', 'kitchen': 'Kitchen',
    'bathroom': 'Bathroom', 'office': 'Office'}
