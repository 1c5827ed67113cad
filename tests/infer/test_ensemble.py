from mitodet.infer import Detection
from mitodet.infer.ensemble import ensemble

MF, NON = "mitotic figure", "non-mitotic figure"


def test_agreement_keeps_pairs_both_models_call():
    a = [Detection(10, 10, 0.9, MF), Detection(100, 100, 0.8, MF), Detection(300, 300, 0.3, NON)]
    b = [Detection(14, 13, 0.7, MF), Detection(100, 180, 0.9, MF), Detection(301, 300, 0.95, MF)]
    out = ensemble(a, b, radius_px=30)
    mf = [d for d in out if d.label == MF]
    assert len(mf) == 1 and (mf[0].x, mf[0].y) == (12, 11.5) and abs(mf[0].probability - 0.8) < 1e-9
    # a pair where only one model says MF stays a non-mitotic candidate with the mean score
    pair = [d for d in out if abs(d.x - 300.5) < 1e-9]
    assert pair[0].label == NON and abs(pair[0].probability - 0.625) < 1e-9
    # unpaired ones keep half their probability, labelled non-mitotic
    assert sorted(round(d.probability, 3) for d in out if d.label == NON) == [0.4, 0.45, 0.625]


def test_one_to_one_closest_first():
    a = [Detection(0, 0, 0.9, MF)]
    b = [Detection(20, 0, 0.9, MF), Detection(5, 0, 0.9, MF)]
    out = ensemble(a, b, 30)
    assert [d.label for d in out].count(MF) == 1
    assert [d for d in out if d.label == MF][0].x == 2.5
    assert ensemble([], b, 30)[0].label == NON
