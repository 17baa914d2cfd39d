"""Dispatch and duplicate benchmarks on the San Francisco 311 sample (real data).

1. Dispatch (智能派遣): learn rules from a training split — request type (or category) ×
   neighbourhood → ``Responsible.Agency`` (majority), plus a city-wide rule per type — and
   apply them with the project's rules engine (``gridcore.dispatch.DispatchRules``: most
   specific area wins). Accuracy on the held-out split, next to the baseline "most frequent
   agency per category". Neighbourhoods play the part of districts (a 6-digit code each).
2. Duplicates (重复事件识别): rank earlier cases as duplicate candidates of each case with
   ``gridcore.duplicates`` (class-related within 200 m and 72 h; distance, time, class and
   character n-gram similarity of the request details) and measure precision / recall against
   the reference "same Request.Type within 100 m and 48 h".
3. Rules, model, both (issue 22): on the issue's time split (last 20 % test) the learned rule
   table alone, the learned dispatch model alone (``gridcore.intelligence.dispatch``, trained
   as ``gridcore learn`` does, its case memory fed day by day as in service) and the two
   combined as served (``combine``: a rule that applies wins, the model proposes elsewhere).
   The data loading, rule learner and model runs are bench_intelligence's (imported, not
   copied); ``--no-model`` skips the ~1 min of training.

    .venv/bin/python benchmarks/bench_dispatch.py [--split time|random] [--seed 1] [--no-model]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.spatial import cKDTree

from gridcore.dispatch import AreaPath, DispatchRule, DispatchRules
from gridcore.duplicates import CaseSketch, rank

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "san_francisco"
CSV = DATA / "sf311_cases_sample.csv"


def load() -> pd.DataFrame:
    if not CSV.exists():
        sys.exit(f"real data {CSV} is absent")
    df = pd.read_csv(CSV, low_memory=False)
    df = df.dropna(subset=["Responsible.Agency", "Category", "Request.Type", "Lat", "Long"])
    df["Opened"] = pd.to_datetime(df["Opened"])
    df["Neighborhood"] = df["Neighborhood"].fillna("?")
    return df.sort_values("Opened").reset_index(drop=True)


def split(df: pd.DataFrame, how: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if how == "time":  # train on the earlier 70 %, test on the later 30 % (no look-ahead)
        cut = int(len(df) * 0.7)
        return df.iloc[:cut], df.iloc[cut:]
    test = df.sample(frac=0.3, random_state=seed)
    return df.drop(test.index), test


def majority(df: pd.DataFrame, keys: list[str]) -> dict:
    return df.groupby(keys)["Responsible.Agency"].agg(lambda s: s.value_counts().index[0]) \
        .to_dict()


def learn(train: pd.DataFrame, key: str, codes: dict[str, str]) -> DispatchRules:
    """Rules 'key × neighbourhood → agency' (district level) and 'key → agency' (city)."""
    rules = [DispatchRule(k, "city", None, a) for k, a in majority(train, [key]).items()]
    for (k, nb), a in majority(train, [key, "Neighborhood"]).items():
        rules.append(DispatchRule(k, "district", codes[nb], a))
    return DispatchRules(rules)


def accuracy(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    codes = {nb: f"{900000 + i}" for i, nb in enumerate(sorted(
        set(train["Neighborhood"]) | set(test["Neighborhood"])))}
    by_cat = majority(train, ["Category"])
    overall = train["Responsible.Agency"].value_counts().index[0]
    base = [by_cat.get(c, overall) for c in test["Category"]]
    out = {"baseline: most frequent agency per category": base}
    for key in ("Category", "Request.Type"):
        engine = learn(train, key, codes)
        preds = []
        for k, nb, cat in zip(test[key], test["Neighborhood"], test["Category"], strict=True):
            p = engine.propose(k, AreaPath(district=codes[nb]))
            preds.append(p.department_code or by_cat.get(cat, overall))
        out[f"rules: {key} x neighbourhood (engine)"] = preds
    truth = test["Responsible.Agency"].to_numpy()
    return {name: float(np.mean(np.asarray(p) == truth)) for name, p in out.items()}


def class_keys(df: pd.DataFrame) -> list[str]:
    """SF (category, request type) as taxonomy-like keys: same major = same category."""
    cats = {c: i for i, c in enumerate(sorted(df["Category"].unique()))}
    minors: dict[str, dict[str, int]] = defaultdict(dict)
    keys = []
    for c, t in zip(df["Category"], df["Request.Type"], strict=True):
        m = minors[c].setdefault(t, len(minors[c]))
        keys.append(f"E{cats[c] % 100:02d}{m % 100:02d}")
    return keys


def duplicates(df: pd.DataFrame, radius: float = 200.0,
               window: timedelta = timedelta(hours=72)) -> dict[str, float]:
    to_m = Transformer.from_crs("EPSG:4326", "EPSG:32610", always_xy=True)
    x, y = to_m.transform(df["Long"].to_numpy(), df["Lat"].to_numpy())
    xy = np.column_stack([x, y])
    tree = cKDTree(xy)
    keys = class_keys(df)
    types = df["Request.Type"].to_numpy()
    at = df["Opened"].dt.tz_localize("America/Los_Angeles", ambiguous="NaT",
                                     nonexistent="shift_forward").to_list()
    text = df["Request.Details"].fillna("").astype(str).to_list()
    opened = df["Opened"].to_numpy()
    sketches = [CaseSketch(keys[i], at[i], text[i], None, i) for i in range(len(df))]
    offered = hits = top1 = top1_hits = 0
    reference = 0
    for i, near in enumerate(tree.query_ball_point(xy, r=radius)):
        if at[i] is pd.NaT:
            continue
        earlier = [j for j in near if j != i and opened[j] <= opened[i]
                   and opened[i] - opened[j] <= np.timedelta64(int(window.total_seconds()), "s")
                   and at[j] is not pd.NaT]
        dist = {j: float(np.hypot(*(xy[i] - xy[j]))) for j in earlier}
        ref = {j for j in earlier if types[j] == types[i] and dist[j] <= 100.0
               and opened[i] - opened[j] <= np.timedelta64(48 * 3600, "s")}
        reference += len(ref)
        ranked = rank(sketches[i], [(sketches[j], dist[j]) for j in earlier], radius, window)
        offered += len(ranked)
        hits += sum(1 for c in ranked if c.case_id in ref)
        if ranked:
            top1 += 1
            top1_hits += ranked[0].case_id in ref
    return {"reference pairs": reference, "offered candidates": offered,
            "true candidates": hits,
            "precision": hits / offered if offered else float("nan"),
            "recall": hits / reference if reference else float("nan"),
            "precision@1": top1_hits / top1 if top1 else float("nan")}


def rules_model_combination() -> None:
    """The three lines of issue 22: rules alone, model alone, and rules + model as served."""
    import time

    from bench_intelligence import _acc, _cases, _Rule, _tops, rule_learner, sf311  # noqa: I001

    from gridcore.intelligence.dispatch import DispatchModel, combine

    df = sf311(DATA.parent)
    cut = int(len(df) * 0.8)
    train, test = df.iloc[:cut], df.iloc[cut:]
    truth = test["Responsible.Agency"].tolist()
    cases = _cases(df)
    t0 = time.perf_counter()
    model = DispatchModel().fit(cases[:cut])
    a = model.memory_weight or 0.5
    live = _tops(np.array([(1 - a) * t + a * m for t, m in model.walk_forward(cases[cut:])]),
                 model.classes)
    took = time.perf_counter() - t0
    print(f"\nRules, model and both on the time split 80/20 (train {len(train)} to "
          f"{train.Opened.max():%Y-%m-%d}, test {len(test)}):")
    table = rule_learner(train, test)  # a rule per type (and neighbourhood) where seen
    print(f"  rules alone (learned table; most frequent agency of the category where no "
          f"rule applies)  {_acc([[r or ''] for r in table], truth)}")
    print(f"  model alone (trained once, case memory fed daily; {took:.0f} s)"
          f"{'':26s}{_acc(live, truth)}")
    # as served, the rules that would be signed as 权责清单 (≥ 5 cases, ≥ 95 % agree) win
    # where one applies; the model proposes everywhere else
    signed = rule_learner(train, test, confident=True)
    both: list[list[str]] = []
    for dept, row in zip(signed, live, strict=True):
        if combine(_Rule(dept), None).source == "rule" and dept is not None:
            both.append([dept, *[x for x in row if x != dept]])
        else:
            both.append(row)
    won = sum(d is not None for d in signed) / len(truth)
    print(f"  rules + model (a signed rule wins where one applies: {won:.0%} of cases)"
          f"{'':17s}{_acc(both, truth)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["time", "random"], default="time")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-model", action="store_true",
                    help="skip rules / model / both (the model's training takes ~1 min)")
    args = ap.parse_args()
    df = load()
    train, test = split(df, args.split, args.seed)
    print(f"SF 311 sample: {len(df)} cases, {df['Responsible.Agency'].nunique()} agencies, "
          f"{df['Category'].nunique()} categories, {df['Request.Type'].nunique()} request "
          f"types, {df['Neighborhood'].nunique()} neighbourhoods; {args.split} split "
          f"train {len(train)} / test {len(test)}")
    print("\nDispatch accuracy on the held-out split:")
    for name, acc in accuracy(train, test).items():
        print(f"  {name:48s} {acc:6.1%}")
    print("\nDuplicate candidates vs reference (same Request.Type, ≤ 100 m, ≤ 48 h):")
    for name, value in duplicates(df).items():
        print(f"  {name:24s} {value:.3f}" if isinstance(value, float) else
              f"  {name:24s} {value}")
    counts = Counter(df["Responsible.Agency"])
    print(f"\n(most frequent agency overall: {counts.most_common(1)[0][0]!r}, "
          f"{counts.most_common(1)[0][1] / len(df):.1%} of cases)")
    if not args.no_model:
        rules_model_combination()


if __name__ == "__main__":
    main()
