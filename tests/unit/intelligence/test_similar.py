"""相似案例推荐: planted near-duplicates come first; earlier-only and scope filters hold."""

import random
from datetime import datetime, timedelta

from gridcore.intelligence.similar import SimilarIndex, StoredCase

FILLER = ["请尽快处理", "严重影响居民生活", "多次反映未解决", "希望有关部门重视", "谢谢"]
TOPICS = ["小区停车收费不合理", "学校周边交通拥堵", "医院挂号难", "工地夜间施工噪音扰民",
          "公交线路调整不便", "农村自来水不通", "物业费上涨", "拖欠工资"]
T0 = datetime(2020, 1, 1)


def corpus(n: int = 400) -> list[StoredCase]:
    rnd = random.Random(3)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        text = f"A{rnd.randint(1, 9)}区{topic}，{rnd.choice(FILLER)}，{rnd.choice(FILLER)}"
        out.append(StoredCase(i, text, f"c{i % len(TOPICS)}", f"g{i % 7}",
                              T0 + timedelta(days=i)))
    return out


def test_planted_near_duplicates_come_first() -> None:
    cases = corpus()
    target = "K3县金星北路明发国际工地民工受伤，工地方拒绝支付医疗费用，态度恶劣"
    dups = [StoredCase(1000 + j, target.replace("恶劣", w), "c0", "g1", T0 + timedelta(days=j))
            for j, w in enumerate(["很差", "恶劣！", "不好"])]
    index = SimilarIndex().build(cases + dups)
    found = index.query(target + "，请求帮助", k=10)
    assert {f.case_id for f in found[:3]} == {1000, 1001, 1002}
    assert found[0].text_similarity > 0.6
    assert len(found) == 10


def test_only_earlier_cases_and_only_inside_scope() -> None:
    cases = corpus()
    index = SimilarIndex().build(cases)
    when = T0 + timedelta(days=100)
    found = index.query("小区停车收费不合理", k=10, before=when)
    assert found and all(f.days_before is not None and f.days_before > 0 for f in found)
    assert all(f.case_id < 100 for f in found)
    scoped = index.query("小区停车收费不合理", k=10, scope={"g2"})
    assert scoped and all(cases[f.case_id].place == "g2" for f in scoped)


def test_class_and_place_break_ties() -> None:
    cases = [StoredCase(1, "路灯不亮", "lamp", "g1", T0),
             StoredCase(2, "路灯不亮", "cover", "g2", T0)]
    index = SimilarIndex(max_df=1.0).build(cases)
    found = index.query("路灯不亮", category="lamp", place="g1")
    assert [f.case_id for f in found] == [1, 2]
    assert found[0].same_category and found[0].same_place


def test_added_cases_are_found() -> None:
    index = SimilarIndex().build(corpus())
    index.add([StoredCase(5000, "地铁站电梯故障停运三天", "c9", "g1", T0)])
    assert index.query("地铁站电梯故障停运", k=1)[0].case_id == 5000


def test_a_shared_index_answers_as_the_built_one_and_keeps_new_cases_in_its_tail(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import numpy as np

    built = SimilarIndex().build(corpus())
    arrays, meta = built.arrays()
    for key, value in arrays.items():  # as layers.intelligence.similar_files writes them
        np.save(tmp_path / f"{key}.npy", value)
    (tmp_path / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))
    mapped = {k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in SimilarIndex.ARRAYS}
    shared = SimilarIndex.from_arrays(mapped, json.loads((tmp_path / "meta.json").read_text()))
    assert shared._rows is not None and shared._cols is not None
    # the postings are the files' pages, not a copy
    assert isinstance(shared._cols.indices, np.memmap) or np.shares_memory(
        shared._cols.indices, mapped["cols_indices"])
    assert isinstance(shared._rows.data, np.memmap) or np.shares_memory(
        shared._rows.data, mapped["rows_data"])
    when = T0 + timedelta(days=500)
    for q in ("A3区医院挂号难，希望有关部门重视", "工地夜间施工噪音扰民"):
        a = built.query(q, k=10, category="c2", place="g3", before=when)
        b = shared.query(q, k=10, category="c2", place="g3", before=when)
        assert [(x.case_id, round(x.score, 5)) for x in a] == \
            [(x.case_id, round(x.score, 5)) for x in b]
    # a case stored after the build: found through the tail, the mapped base untouched
    target = "K3县金星北路工地民工受伤，工地方拒绝支付医疗费用"
    shared.add([StoredCase(5000, target, "c0", "g1", T0 + timedelta(days=450))])
    assert shared._tail is not None and shared._tail.shape[0] == 1
    assert shared._rows.shape[0] == len(corpus())
    found = shared.query(target + "，态度恶劣", k=5, before=when)
    assert found[0].case_id == 5000 and found[0].text_similarity > 0.6
    assert len(found) == 5
    try:
        shared.arrays()
    except Exception as exc:  # noqa: BLE001
        assert "built" in str(exc)
    else:
        raise AssertionError("a mapped index cannot be shared again")


def test_merging_new_cases_answers_as_a_full_build_with_the_same_vectoriser(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An incremental publication: the cases stored since are weighed with the published
    index's vectoriser and merged — the answers of a full build with that vectoriser."""
    import numpy as np

    cases = corpus(400)
    late = [StoredCase(2000 + j, f"K{j}县金星北路工地民工受伤，拒绝支付医疗费用{w}", "c9", "g9",
                       T0 + timedelta(days=420 + j))
            for j, w in enumerate(["，态度恶劣", "", "！", "，请求帮助"])]
    base = SimilarIndex().build(cases[:300])
    arrays, meta = base.arrays()
    for key, value in arrays.items():
        np.save(tmp_path / f"{key}.npy", value)
    mapped = SimilarIndex.from_arrays(
        {k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in SimilarIndex.ARRAYS}, meta)
    merged = mapped.merged(cases[300:] + late)
    full = SimilarIndex().build(cases + late, like=base)
    refit = SimilarIndex().build(cases + late)
    assert len(merged) == len(full) == 404 and merged.vocabulary() == full.vocabulary()
    assert (merged._cols != full._cols).nnz == 0 and (merged._rows != full._rows).nnz == 0
    assert merged._cols.has_sorted_indices
    when = T0 + timedelta(days=500)
    for q, cat, place in (("工地民工受伤，拒绝支付医疗费用", None, None),
                          ("A3区医院挂号难，希望有关部门重视", "c2", "g3"),
                          ("物业费上涨，多次反映未解决", "c6", "g9")):
        a = merged.query(q, k=10, category=cat, place=place, before=when)
        b = full.query(q, k=10, category=cat, place=place, before=when)
        assert [(x.case_id, round(x.score, 5)) for x in a] == \
            [(x.case_id, round(x.score, 5)) for x in b]
    # the new cases are found, a new class and place got their codes, and it can be shared
    found = merged.query("金星北路工地民工受伤", k=4, category="c9", place="g9")
    assert {f.case_id for f in found} == {2000, 2001, 2002, 2003}
    assert found[0].same_category and found[0].same_place
    assert merged.arrays()[1]["n"] == 404
    # a refit learns other document frequencies: not the same vectoriser
    assert not np.array_equal(refit._idf, full._idf)
