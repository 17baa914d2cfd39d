"""Benchmarks of the intelligence room on real data, with baselines in the same run.

    python benchmarks/bench_intelligence.py [--data ../shared/data] [--only classify,dispatch,
        similar,forecast] [--scale 1000000] [--runs 3] [--out out/] [--retrain monthly,weekly]

    (--only classify:zh or classify:en runs one language of 智能分类)

1. 智能分类: Chinese hotline messages (5-fold stratified CV, 3 repeats) and SeeClickFix (time
   split, last 20 %; also the split the issue's figures came from), against majority, taxonomy
   keywords and plain TF-IDF + LR; confusion matrix and accuracy/coverage curve as PNG.
2. 智能派遣: SF 311 Responsible.Agency, time split (last 20 %): the rule learner of
   bench_dispatch, plain TF-IDF + LR, the model with its memory frozen at the split and live
   (updated daily, as in service), and rules + model.
3. 相似案例推荐: precision@5 of same-category neighbours; reply similarity; k=10 latency over a
   synthetic 1 M-case index built by perturbing real texts.
4. 未诉先办: SF 311 weekly counts per neighbourhood × category, rolling origin over the last 52
   weeks, against naive (last week), seasonal naive (a year ago) and a 13-week mean.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

from gridcore.intelligence.baselines import (  # noqa: E402
    KeywordClassifier,
    MajorityClassifier,
    PlainTfidfClassifier,
)
from gridcore.intelligence.classify import TextClassifier  # noqa: E402
from gridcore.intelligence.dispatch import DispatchCase, DispatchModel, combine  # noqa: E402
from gridcore.intelligence.evaluation import (  # noqa: E402
    Split,
    compare,
    coverage_curve,
    scores,
    threshold_for_accuracy,
)
from gridcore.intelligence.features import BackgroundSpace, Report, terms_from_names  # noqa: E402
from gridcore.intelligence.forecast import (  # noqa: E402
    FEATURES,
    CaseForecaster,
    feature_cube,
    poisson_deviance,
    weekly_panel,
)
from gridcore.intelligence.memory import Place  # noqa: E402
from gridcore.intelligence.similar import SimilarIndex, StoredCase  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)


def header() -> None:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"bench_intelligence — {datetime.now():%Y-%m-%d %H:%M} — {platform.node()}, "
          f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
          f"scikit-learn {sklearn.__version__}, load {os.getloadavg()[0]:.2f}")


def fmt(s: dict[str, float]) -> str:
    return f"acc {s['accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}  top-3 {s['top3']:.3f}"


# ---------------------------------------------------------------- 1. classification


def chinese(data: Path) -> None:
    text = data / "text"
    d = pd.read_csv(text / "cn_hotline_labelled_train.csv")
    d["detail"] = d["detail"].fillna("")
    tax = pd.read_csv(text / "cn_hotline_taxonomy.csv")
    terms = {lab: terms_from_names([lab, *g.label_l2, *g.label_l3])
             for lab, g in tax.groupby("label_l1")}
    pool = pd.concat([pd.read_csv(text / "cn_hotline_messages_unlabelled.csv"),
                      pd.read_csv(text / "cn_hotline_messages_with_replies.csv")])
    t0 = time.perf_counter()
    bg = BackgroundSpace().fit((pool.title + "。" + pool.detail.fillna("")).tolist())
    print(f"  background space (LSA 300) from {len(pool)} unlabelled messages: "
          f"{time.perf_counter() - t0:.0f} s (fitted once, no labels)")
    reports = [Report(t, b) for t, b in zip(d.title, d.detail, strict=True)]
    y = d.label_l1.tolist()
    cands = {"majority class": MajorityClassifier,
             "keywords (taxonomy names)": lambda: KeywordClassifier(terms),
             "plain TF-IDF (chars) + LR": PlainTfidfClassifier,
             "ours, no taxonomy, no background": lambda: TextClassifier(),
             # what `gridcore learn` trains and serves (training.train_classifier): the
             # taxonomy's names as keywords, no background space — the figure of record
             "ours as served (chars + taxonomy)": lambda: TextClassifier(class_terms=terms),
             "ours (chars + taxonomy + background)":
                 lambda: TextClassifier(class_terms=terms, background=bg)}
    try:
        import jieba  # noqa: F401  (only to measure whether a segmenter helps)
        cands["jieba words + LR (segmenter check)"] = lambda: _JiebaLR()
    except ImportError:
        pass
    from sklearn.model_selection import StratifiedKFold
    res: dict[str, list[dict[str, float]]] = defaultdict(list)
    t0 = time.perf_counter()
    for rep in range(3):
        for trn, tst in StratifiedKFold(5, shuffle=True, random_state=rep).split(reports, y):
            c = compare(cands, reports, y, Split(trn, tst, "cv"))  # type: ignore[arg-type]
            for k, v in c.results.items():
                res[k].append(v.as_dict() | {"rep": rep})
    print(f"  {len(d)} messages, {len(set(y))} labels; 5-fold stratified CV "
          f"(first repetition = the issue's protocol; mean of 3 repetitions beside it); "
          f"{time.perf_counter() - t0:.0f} s")
    for k, runs in res.items():
        first = {m: float(np.mean([r[m] for r in runs if r["rep"] == 0]))
                 for m in ("accuracy", "macro_f1", "top3")}
        allr = {m: float(np.mean([r[m] for r in runs])) for m in ("accuracy", "macro_f1",
                                                                   "top3")}
        print(f"    {k:42s} {fmt(first)}   | 3×5-fold acc {allr['accuracy']:.3f} "
              f"macro-F1 {allr['macro_f1']:.3f}")
    # out-of-fold probabilities of the model as served (no background space) for the
    # confidence threshold
    oof_p: list[np.ndarray] = []
    oof_y: list[str] = []
    for trn, tst in StratifiedKFold(5, shuffle=True, random_state=0).split(reports, y):
        m = TextClassifier(class_terms=terms).fit(
            [reports[i] for i in trn], [y[i] for i in trn])
        proba = m.predict_proba([reports[i] for i in tst])
        order = [m.classes.index(c) for c in sorted(set(y))]
        oof_p.append(proba[:, order])
        oof_y += [y[i] for i in tst]
    curve = coverage_curve(oof_y, np.vstack(oof_p), sorted(set(y)),
                           list(np.round(np.arange(0, 1, 0.05), 2)))
    print("    file-if-confident (out-of-fold, model as served): threshold → coverage / "
          "accuracy of filed")
    print("      " + "  ".join(f"{p.threshold:.2f}:{p.coverage:.2f}/{p.accuracy:.3f}"
                               for p in curve[::2]))
    for target in (0.90, 0.95):
        pt = threshold_for_accuracy(curve, target)
        if pt:
            print(f"      for ≥ {target:.0%} accuracy: threshold {pt.threshold:.2f} files "
                  f"{pt.coverage:.0%} (accuracy {pt.accuracy:.3f})")


class _JiebaLR(PlainTfidfClassifier):
    """jieba word segmentation + the same TF-IDF + LR, to measure whether a segmenter helps."""

    def fit(self, reports, labels):  # type: ignore[no-untyped-def]
        import logging

        import jieba
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        jieba.setLogLevel(logging.WARNING)
        self._vec = TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None,
                                    sublinear_tf=True)
        self._model = LogisticRegression(C=20, class_weight="balanced", max_iter=3000)
        self._model.fit(self._vec.fit_transform([r.text() for r in reports]), list(labels))
        return self


def english(data: Path, out: Path) -> None:
    df = pd.read_csv(data / "text" / "en_seeclickfix_georgia.csv")
    lab = df.dropna(subset=["type"]).copy()
    lab["t"] = pd.to_datetime(lab.created_at, format="%m/%d/%Y - %I:%M%p")
    print(f"  {len(lab)} labelled reports, {lab.type.nunique()} types, "
          f"{lab.text.duplicated().sum()} repeated texts dropped before splitting")
    bg = BackgroundSpace(language="en").fit(df.text.fillna("").tolist())
    splits = {
        "time split (sorted by created_at as a time)":
            lab.sort_values("t", kind="stable").drop_duplicates("text"),
        "the issue's split (created_at sorted as TEXT, MM/DD/YYYY: years mixed)":
            lab.sort_values("created_at", kind="stable").drop_duplicates("text")}
    for name, d in splits.items():
        reports = [Report(s if isinstance(s, str) else "", b if isinstance(b, str) else "")
                   for s, b in zip(d.summary, d.description, strict=True)]
        y = d.type.tolist()
        cut = int(len(d) * 0.8)
        split = Split(np.arange(cut), np.arange(cut, len(d)), name)
        terms = {c: terms_from_names([c]) for c in sorted(set(y))}
        cands = {"majority class": MajorityClassifier,
                 "keywords (type names)": lambda terms=terms: KeywordClassifier(terms),
                 "plain TF-IDF + LR": PlainTfidfClassifier,
                 "ours (words + char n-grams, balanced)": lambda: TextClassifier(),
                 "ours + background space": lambda: TextClassifier(background=bg)}
        t0 = time.perf_counter()
        res = compare(cands, reports, y, split)  # type: ignore[arg-type]
        print(f"  {name}: train {cut} / test {len(d) - cut} "
              f"({time.perf_counter() - t0:.0f} s for all five)")
        for k, v in res.results.items():
            print(f"    {k:42s} {fmt(v.as_dict())}")
        plain, ours = res.results["plain TF-IDF + LR"], res.results[
            "ours (words + char n-grams, balanced)"]
        print(f"    macro-F1 gain over plain: {ours.macro_f1 - plain.macro_f1:+.3f} "
              f"(issue's plain figure 0.676 → {ours.macro_f1 - 0.676:+.3f})")
        if name.startswith("time"):
            model = TextClassifier().fit([reports[i] for i in split.train],
                                         [y[i] for i in split.train])
            test_x = [reports[i] for i in split.test]
            test_y = [y[i] for i in split.test]
            proba = model.predict_proba(test_x)
            _bootstrap_delta(test_y, proba, model.classes, reports, y, split)
            _retrained_weekly(reports, y, d.t.tolist(), cut)
            _coverage(test_y, proba, model.classes, out)
            _confusion(test_y, proba, model.classes, out / "confusion_seeclickfix.png")


def _retrained_weekly(reports: list[Report], y: list[str], times: list, cut: int) -> None:  # type: ignore[type-arg]
    """As `serve` runs it (learning weekly): each week of the test window predicted by models
    trained on every report before that week — ours and the plain model alike."""
    classes = sorted(set(y))
    col = {c: j for j, c in enumerate(classes)}
    weeks = pd.Series(times[cut:]).dt.to_period("W-SUN")
    out = {"plain TF-IDF + LR": np.zeros((len(y) - cut, len(classes))),
           "ours (words + char n-grams, balanced)": np.zeros((len(y) - cut, len(classes)))}
    t0 = time.perf_counter()
    for w in weeks.unique():
        rows = np.flatnonzero((weeks == w).to_numpy())
        start = w.start_time
        before = [i for i in range(len(y)) if times[i] < start]
        for name, make in (("plain TF-IDF + LR", PlainTfidfClassifier),
                           ("ours (words + char n-grams, balanced)", TextClassifier)):
            m = make().fit([reports[i] for i in before], [y[i] for i in before])
            p = m.predict_proba([reports[cut + i] for i in rows])
            for j, c in enumerate(m.classes):
                out[name][rows, col[c]] = p[:, j]
    test_y = y[cut:]
    res = {k: scores(test_y, v, classes) for k, v in out.items()}
    print(f"    retrained weekly as `serve` learns ({len(weeks.unique())} weeks, "
          f"{time.perf_counter() - t0:.0f} s):")
    for k, v in res.items():
        print(f"      {k:40s} {fmt(v.as_dict())}")
    gain = res["ours (words + char n-grams, balanced)"].macro_f1 - res[
        "plain TF-IDF + LR"].macro_f1
    print(f"      macro-F1 gain over plain, both retrained weekly: {gain:+.3f}")


def _bootstrap_delta(test_y, proba, classes, reports, y, split) -> None:  # type: ignore[no-untyped-def]
    plain = PlainTfidfClassifier().fit([reports[i] for i in split.train],
                                       [y[i] for i in split.train])
    pp = plain.predict_proba([reports[i] for i in split.test])
    rng = np.random.default_rng(0)
    deltas = []
    truth = np.asarray(test_y, dtype=object)
    for _ in range(300):
        idx = rng.integers(0, len(truth), len(truth))
        deltas.append(scores(list(truth[idx]), proba[idx], classes).macro_f1
                      - scores(list(truth[idx]), pp[idx], plain.classes).macro_f1)
    lo, hi = np.percentile(deltas, [5, 95])
    print(f"    bootstrap of the test set (300×): macro-F1 gain 90 % interval "
          f"[{lo:+.3f}, {hi:+.3f}] — 8 of the test's types have ≤ 3 reports")


def _coverage(test_y, proba, classes, out: Path) -> None:  # type: ignore[no-untyped-def]
    curve = coverage_curve(test_y, proba, classes, list(np.round(np.arange(0, 1, 0.05), 2)))
    print("    file-if-confident (time split): threshold → coverage / accuracy of filed")
    print("      " + "  ".join(f"{p.threshold:.2f}:{p.coverage:.2f}/{p.accuracy:.3f}"
                               for p in curve[::2]))
    for target in (0.90, 0.95):
        p = threshold_for_accuracy(curve, target)
        if p:
            print(f"      for ≥ {target:.0%} accuracy of auto-filed reports: threshold "
                  f"{p.threshold:.2f} files {p.coverage:.0%} (accuracy {p.accuracy:.3f})")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([p.coverage for p in curve], [p.accuracy for p in curve], marker="o")
    for p in curve[::4]:
        ax.annotate(f"{p.threshold:.2f}", (p.coverage, p.accuracy), fontsize=7)
    ax.set_xlabel("coverage (share filed automatically)")
    ax.set_ylabel("accuracy of filed reports")
    ax.set_title("SeeClickFix, time split: confidence threshold")
    fig.tight_layout()
    fig.savefig(out / "coverage_seeclickfix.png", dpi=110)
    plt.close(fig)


def _confusion(test_y, proba, classes, path: Path,  # type: ignore[no-untyped-def]
               title: str = "SeeClickFix time split", pred=None, most: int = 0) -> None:
    """Row-normalised confusion matrix as PNG; ``most``: only the most frequent true labels
    (the rest pooled as "(other)"), for label sets too large to read."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix
    if pred is None:
        pred = [classes[i] for i in proba.argmax(axis=1)]
    if most:
        keep = {c for c, _ in Counter(test_y).most_common(most)}
        test_y = [t if t in keep else "(other)" for t in test_y]
        pred = [p if p in keep else "(other)" for p in pred]
    labels = sorted(set(test_y) | set(pred))
    m = confusion_matrix(test_y, pred, labels=labels)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(10, 9))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), [f"{lab} ({m[i].sum()})" for i, lab in
                                       enumerate(labels)], fontsize=7)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (test count)")
    ax.set_title(f"{title} — confusion matrix (row-normalised colour)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"    confusion matrix: {path}")


# ---------------------------------------------------------------- 2. dispatch


def sf311(data: Path) -> pd.DataFrame:
    df = pd.read_csv(data / "san_francisco" / "sf311_cases_sample.csv", low_memory=False)
    df = df.dropna(subset=["Responsible.Agency", "Category", "Request.Type", "Lat", "Long"])
    df["Opened"] = pd.to_datetime(df["Opened"])
    df["Neighborhood"] = df["Neighborhood"].fillna("?")
    df["Request.Details"] = df["Request.Details"].fillna("")
    return df.sort_values("Opened", kind="stable").reset_index(drop=True)


def _majority(df: pd.DataFrame, keys: list[str]) -> dict:  # type: ignore[type-arg]
    return df.groupby(keys)["Responsible.Agency"].agg(
        lambda s: s.value_counts().index[0]).to_dict()


def rule_learner(train: pd.DataFrame, test: pd.DataFrame, confident: bool = False
                 ) -> list[str | None]:
    """bench_dispatch's learner: Request.Type × neighbourhood (district rule) and Request.Type
    (city rule), most specific wins, applied with gridcore.dispatch when importable.
    ``confident``: keep only rules a city could sign as 权责清单 (≥ 5 cases, ≥ 95 % agree);
    no fallback (None where no rule applies)."""
    def agree(keys: list[str]) -> dict:  # type: ignore[type-arg]
        g = train.groupby(keys)["Responsible.Agency"]
        top = g.agg(lambda s: s.value_counts().iloc[0] / len(s))
        n = g.size()
        maj = _majority(train, keys)
        return {k: a for k, a in maj.items() if not confident or (n[k] >= 5 and top[k] >= .95)}
    city, local = agree(["Request.Type"]), agree(["Request.Type", "Neighborhood"])
    by_cat = _majority(train, ["Category"])
    overall = train["Responsible.Agency"].value_counts().index[0]
    try:
        from gridcore.dispatch import AreaPath, DispatchRule, DispatchRules
        codes = {nb: f"{900000 + i}" for i, nb in enumerate(sorted(
            set(train.Neighborhood) | set(test.Neighborhood)))}
        rules = [DispatchRule(k, "city", None, a) for k, a in city.items()]
        rules += [DispatchRule(k, "district", codes[nb], a) for (k, nb), a in local.items()]
        engine = DispatchRules(rules)
        out = [engine.propose(t, AreaPath(district=codes[nb])).department_code
               for t, nb in zip(test["Request.Type"], test.Neighborhood, strict=True)]
    except ImportError:
        out = [local.get((t, nb), city.get(t)) for t, nb in
               zip(test["Request.Type"], test.Neighborhood, strict=True)]
    if confident:
        return out
    return [o or by_cat.get(c, overall) for o, c in zip(out, test.Category, strict=True)]


def _cases(df: pd.DataFrame) -> list[DispatchCase]:
    return [DispatchCase((c, t, d), d, Place(community=nb, district=str(sd)),
                         o.to_pydatetime(), a, s)
            for c, t, d, nb, sd, o, a, s in zip(
                df.Category, df["Request.Type"], df["Request.Details"], df.Neighborhood,
                df["Supervisor.District"], df.Opened, df["Responsible.Agency"], df.Source,
                strict=True)]


def _acc(pred_top: list[list[str]], truth: list[str]) -> str:
    from sklearn.metrics import f1_score
    a = np.mean([p[:1] == [t] for p, t in zip(pred_top, truth, strict=True)])
    t3 = np.mean([t in p[:3] for p, t in zip(pred_top, truth, strict=True)])
    f1 = f1_score(truth, [p[0] if p else "" for p in pred_top], average="macro",
                  zero_division=0)
    return f"accuracy {a:.3f}  macro-F1 {f1:.3f}  top-3 {t3:.3f}"


def _tops(p: np.ndarray, classes: list[str]) -> list[list[str]]:
    return [[classes[j] for j in np.argsort(-row)[:3]] for row in p]


def dispatch(data: Path, out: Path, periods: set[str]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    df = sf311(data)
    print(f"  SF 311: {len(df)} cases, {df['Responsible.Agency'].nunique()} agencies")
    for frac in (0.7, 0.8):
        cut = int(len(df) * frac)
        r = rule_learner(df.iloc[:cut], df.iloc[cut:])
        acc = np.mean(np.array(r, dtype=object) == df["Responsible.Agency"].iloc[cut:]
                      .to_numpy())
        print(f"    rule learner (bench_dispatch), time split {frac:.0%}/{1 - frac:.0%}: "
              f"accuracy {acc:.3f}")
    cut = int(len(df) * 0.8)
    train, test = df.iloc[:cut], df.iloc[cut:]
    truth = test["Responsible.Agency"].tolist()
    print(f"  time split 80/20: train {len(train)} (to {train.Opened.max():%Y-%m-%d}) / test "
          f"{len(test)} ({test.Opened.min():%Y-%m-%d} … {test.Opened.max():%Y-%m-%d})")

    def plain_doc(d: pd.DataFrame) -> list[str]:
        return (d.Category + " | " + d["Request.Type"] + " | " + d["Request.Details"] + " | "
                + d.Neighborhood).tolist()
    t0 = time.perf_counter()
    vec = TfidfVectorizer()
    lr = LogisticRegression(C=10, max_iter=3000, solver="newton-cg").fit(
        vec.fit_transform(plain_doc(train)), train["Responsible.Agency"])
    plain = _tops(lr.predict_proba(vec.transform(plain_doc(test))), list(lr.classes_))
    print(f"    plain TF-IDF + LR (static)                  {_acc(plain, truth)}  "
          f"({time.perf_counter() - t0:.0f} s)")
    # the same plain model retrained every month, for a like-for-like "live" comparison
    # (newton-cg as the dispatch model: the same optimum as lbfgs, several times faster)
    t0 = time.perf_counter()
    monthly: list[list[str]] = []
    months = test.Opened.dt.to_period("M")
    for m in months.unique() if "monthly" in periods else ():
        start = m.start_time
        hist = df[df.Opened < start]
        v = TfidfVectorizer()
        mdl = LogisticRegression(C=10, max_iter=3000, solver="newton-cg").fit(
            v.fit_transform(plain_doc(hist)), hist["Responsible.Agency"])
        part = test[months == m]
        monthly += _tops(mdl.predict_proba(v.transform(plain_doc(part))), list(mdl.classes_))
    if monthly:
        print(f"    plain TF-IDF + LR retrained monthly         {_acc(monthly, truth)}  "
              f"({time.perf_counter() - t0:.0f} s)")
    rules = rule_learner(train, test)
    alone = [[r or ""] for r in rules]
    print(f"    rules alone (learned table, static)         {_acc(alone, truth)}")

    cases = _cases(df)
    tr, te = cases[:cut], cases[cut:]
    # the department table a city configures (code → name): here every agency of the file, so
    # also the queues whose first case is in the test window (the file has no creation dates)
    directory = {a: a for a in sorted(df["Responsible.Agency"].unique())}
    t0 = time.perf_counter()
    model = DispatchModel(directory=directory).fit(tr)
    fit_s = time.perf_counter() - t0
    thr = model.name_threshold
    static = [[c.department for c in model.predict(case).candidates] for case in te]
    print(f"    model alone, memory frozen at the split     {_acc(static, truth)}  "
          f"(fit {fit_s:.0f} s incl. choosing the blend weight {model.memory_weight} and the "
          f"name threshold {thr} on the last fifth of the training part)")
    parts = model.walk_forward(te)
    a = model.memory_weight or 0.5
    live_p = np.array([(1 - a) * t + a * m for t, m in parts])
    live = [model.rank(c, p) for c, p in zip(te, live_p, strict=True)]
    print(f"    model alone, live memory (daily)            {_acc(live, truth)}")
    print(f"      without the department names' top-3 completion: "
          f"{_acc(_tops(live_p, model.classes), truth)}")
    print(f"      parts: text model only {_acc(_tops(np.array([t for t, _ in parts]), model.classes), truth)}; "  # noqa: E501
          f"memory only {_acc(_tops(np.array([m for _, m in parts]), model.classes), truth)}")
    # as in service: `gridcore learn` monthly or weekly (serve's default schedule, same
    # blend weight), the memory fed daily
    for every, period in (("monthly", "M"), ("weekly ", "W-SUN")):
        if every.strip() not in periods:
            continue
        t0 = time.perf_counter()
        retrained, bare, n = _retrained(cases, te, a, period, directory, thr)
        print(f"    model retrained {every} + live memory        {_acc(retrained, truth)}  "
              f"({time.perf_counter() - t0:.0f} s for {n} trainings)")
        print(f"      without the department names' top-3 completion: {_acc(bare, truth)}")
        _confusion(truth, None, None, out / f"confusion_dispatch_{every.strip()}.png",
                   f"SF 311 dispatch, retrained {every.strip()}", [r[0] for r in retrained],
                   most=15)
    for label, rl in (("all learned rules win", rules),
                      ("only confident rules (≥5 cases, ≥95 %) win", rule_learner(
                          train, test, confident=True))):
        comb: list[list[str]] = []
        n_rule = 0
        for dept, row in zip(rl, live, strict=True):
            d = combine(_Rule(dept), None)
            if d.source == "rule" and dept is not None:
                n_rule += 1
                comb.append([dept, *[x for x in row if x != dept]])
            else:
                comb.append(row)
        print(f"    rules + model (live), {label:40s} {_acc(comb, truth)}  "
              f"(rule decided {n_rule / len(truth):.0%})")
    ex = next(i for i, c in enumerate(te) if c.place.community == "Mission"
              and c.path[0] == "Street and Sidewalk Cleaning")
    pred = model.predict(te[ex])
    print(f"    example: {te[ex].path[1]!r} in {te[ex].place.community}: "
          + "; ".join(f"{c.department} {c.probability:.0%} ({c.reason()})"
                      for c in pred.candidates))


def _retrained(cases: list[DispatchCase], te: list[DispatchCase], a: float, period: str,
               directory: dict[str, str], thr: float | None,
               ) -> tuple[list[list[str]], list[list[str]], int]:
    """Top 3 of each test case from a model trained on everything before its period (a month,
    a week) with the blend weight ``a`` and name threshold ``thr`` (chosen at the split, as
    `learn` keeps them), its memory walking forward through the period; and the same top 3
    without the department names' completion."""
    out: list[list[str]] = []
    bare: list[list[str]] = []
    periods = pd.Series([c.at for c in te]).dt.to_period(period)
    for p in periods.unique():
        start = p.start_time.to_pydatetime()
        m = DispatchModel(memory_weight=a, directory=directory, name_threshold=thr).fit(
            [c for c in cases if c.at < start])
        part = [c for c, x in zip(te, periods, strict=True) if x == p]
        blended = np.array([(1 - a) * t + a * mm for t, mm in m.walk_forward(part)])
        out += [m.rank(c, b) for c, b in zip(part, blended, strict=True)]
        bare += _tops(blended, m.classes)
    return out, bare, len(periods.unique())


class _Rule:
    def __init__(self, dept: str | None) -> None:
        self.department_code = dept
        self.reason = "learned rule"


# ---------------------------------------------------------------- 3. similar cases


def _p_at_5(index: SimilarIndex, texts: list[str], y: list[str], times: list | None = None,
            ) -> float:  # type: ignore[type-arg]
    hits = []
    for i, t in enumerate(texts):
        found = index.query(t, k=5, exclude=[i],
                            before=times[i] if times is not None else None)
        if found:
            hits.append(np.mean([y[f.case_id] == y[i] for f in found]))
    return float(np.mean(hits))


def _random_p5(y: list[str]) -> float:
    counts = Counter(y)
    n = len(y)
    return sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))


def similar(data: Path, scale: int, runs: int) -> None:
    text = data / "text"
    d = pd.read_csv(text / "cn_hotline_labelled_train.csv")
    d["detail"] = d["detail"].fillna("")
    texts = (d.title + "。" + d.detail).tolist()
    y = d.label_l1.tolist()
    index = SimilarIndex().build([StoredCase(i, t) for i, t in enumerate(texts)])
    from sklearn.model_selection import StratifiedKFold
    reports = [Report(t, b) for t, b in zip(d.title, d.detail, strict=True)]
    pred = [""] * len(y)
    for trn, tst in StratifiedKFold(5, shuffle=True, random_state=0).split(reports, y):
        m = TextClassifier().fit([reports[i] for i in trn], [y[i] for i in trn])
        for i, p in zip(tst, m.predict([reports[i] for i in tst]), strict=True):
            pred[i] = p
    boosted = SimilarIndex().build([StoredCase(i, t, y[i]) for i, t in enumerate(texts)])
    hits = []
    for i, t in enumerate(texts):
        found = boosted.query(t, k=5, exclude=[i], category=pred[i])
        hits.append(np.mean([y[f.case_id] == y[i] for f in found]))
    print(f"  Chinese labelled messages ({len(y)}, 7 labels), precision@5 of same-label "
          f"neighbours (the case itself excluded):")
    print(f"    random neighbours (expected)                 {_random_p5(y):.3f}")
    print(f"    class-only: 5 cases of the predicted class    "
          f"{np.mean(np.array(pred) == np.array(y)):.3f}  (= CV accuracy of 智能分类)")
    print(f"    text similarity only                          {_p_at_5(index, texts, y):.3f}")
    print(f"    text + predicted-class boost                  {np.mean(hits):.3f}")

    df = pd.read_csv(text / "en_seeclickfix_georgia.csv").dropna(subset=["type"])
    df["t"] = pd.to_datetime(df.created_at, format="%m/%d/%Y - %I:%M%p")
    df = df.sort_values("t", kind="stable").drop_duplicates("text").reset_index(drop=True)
    en = df.text.tolist()
    ey = df.type.tolist()
    times = [t.to_pydatetime() for t in df.t]
    eidx = SimilarIndex().build([StoredCase(i, t, None, None, times[i])
                                 for i, t in enumerate(en)])
    print(f"  SeeClickFix ({len(en)} de-duplicated), earlier cases only: random "
          f"{_random_p5(ey):.3f}, text similarity {_p_at_5(eidx, en, ey, times):.3f}")

    r = pd.read_csv(text / "cn_hotline_messages_with_replies.csv")
    r["t"] = pd.to_datetime(r.time, format="mixed")
    r = r.sort_values("t", kind="stable").reset_index(drop=True)
    msgs = (r.title + "。" + r.detail.fillna("")).tolist()
    rt = [t.to_pydatetime() for t in r.t]
    ridx = SimilarIndex().build([StoredCase(i, m, None, None, rt[i])
                                 for i, m in enumerate(msgs)])
    from sklearn.feature_extraction.text import TfidfVectorizer
    rep = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True,
                          min_df=2).fit_transform(r.reply.fillna(""))
    rng = np.random.default_rng(0)
    near, rand = [], []
    for i in range(len(msgs)):
        found = ridx.query(msgs[i], k=5, before=rt[i])
        if len(found) < 5:
            continue
        ids = [f.case_id for f in found]
        near.append(float((rep[ids] @ rep[i].T).mean()))
        rand.append(float((rep[rng.integers(0, i, 5)] @ rep[i].T).mean()))
    print(f"  hotline messages with replies ({len(msgs)}): cosine between a message's real "
          f"reply and the replies of its 5 most similar earlier messages {np.mean(near):.3f} "
          f"vs 5 random earlier ones {np.mean(rand):.3f} ({len(near)} messages)")
    if scale:
        similar_scale(data, scale, runs)


def similar_scale(data: Path, n: int, runs: int) -> None:
    idx, texts, build = synthetic_index(data, n)
    rows = idx._rows
    assert rows is not None
    mb = 2 * (rows.data.nbytes + rows.indices.nbytes) / 2 ** 20
    print(f"  synthetic index: {n:,} cases (real texts with 15 % of terms dropped and 10 % of "
          f"another's spliced in), {rows.nnz:,} postings, ≈ {mb:.0f} MiB (CSR + CSC), "
          f"built in {build:.0f} s")
    p95s, meds = [], []
    for run in range(runs):
        lat = query_latencies(idx, texts, seed=100 + run)
        p95s.append(np.percentile(lat, 95))
        meds.append(np.median(lat))
        print(f"    run {run + 1}: 300 queries (a real text, 10 % of characters dropped), "
              f"k=10, earlier-only: median {np.median(lat):.1f} ms, p95 {p95s[-1]:.1f} ms, "
              f"max {max(lat):.1f} ms")
    print(f"    median of {runs} runs: median {np.median(meds):.1f} ms, p95 "
          f"{np.median(p95s):.1f} ms (target ≤ 50 ms p95)")


def query_latencies(idx: SimilarIndex, texts: list[str], seed: int,
                    n: int = 300) -> list[float]:
    """Milliseconds of ``n`` queries: a real text with 10 % of its characters dropped, k = 10,
    class and place boosts, earlier-only."""
    rng = np.random.default_rng(seed)
    lat = []
    for i in rng.integers(0, len(texts), n):
        q = "".join(ch for ch in texts[i] if rng.random() > 0.1)
        t1 = time.perf_counter()
        idx.query(q, k=10, category="c3", place="g7", before=datetime(2019, 6, 1))
        lat.append((time.perf_counter() - t1) * 1000)
    return lat


def hotline_texts(data: Path) -> list[str]:
    texts: list[str] = []
    for f in ("cn_hotline_messages_unlabelled.csv", "cn_hotline_messages_with_replies.csv",
              "cn_hotline_labelled_train.csv"):
        d = pd.read_csv(data / "text" / f)
        texts += (d.title + "。" + d.detail.fillna("")).tolist()
    return texts


def synthetic_index(data: Path, n: int) -> tuple[SimilarIndex, list[str], float]:
    """An index of ``n`` cases made of the real Chinese messages, each perturbed (15 % of its
    terms dropped, 10 % of another's spliced in, in the counted space), 30 classes, 2,000
    grids, five years; with the texts and the seconds it took."""
    texts = hotline_texts(data)
    idx = SimilarIndex(language="zh")
    base = idx.counts(texts)
    chunk = 100_000

    def make(c: int):  # type: ignore[no-untyped-def]
        r = np.random.default_rng(c)
        m = min(chunk, n - c * chunk)
        a, b = base[r.integers(0, len(texts), m)], base[r.integers(0, len(texts), m)]
        a.data = a.data * (r.random(a.nnz) > 0.15)  # drop 15 % of a real text's terms
        b.data = b.data * (r.random(b.nnz) < 0.10)  # splice in 10 % of another's
        x = (a + b).tocsr()
        x.eliminate_zeros()
        return x
    t0 = time.perf_counter()
    df = np.zeros(idx.n_features, dtype=np.int64)
    for c in range((n + chunk - 1) // chunk):
        df += np.bincount(make(c).indices, minlength=idx.n_features)
    idx.set_document_frequencies(df, n)
    cats = [f"c{i}" for i in range(30)]
    grids = [f"g{i}" for i in range(2000)]
    start = datetime(2015, 1, 1)
    for c in range((n + chunk - 1) // chunk):
        x = make(c)
        r = np.random.default_rng(10_000 + c)
        m = x.shape[0]
        idx.append_counts(x, np.arange(c * chunk, c * chunk + m).tolist(),
                          [cats[i] for i in r.integers(0, 30, m)],
                          [grids[i] for i in r.integers(0, 2000, m)],
                          [start + timedelta(minutes=int(v))
                           for v in r.integers(0, 5 * 365 * 1440, m)])
    idx.finish()
    return idx, texts, time.perf_counter() - t0


# ---------------------------------------------------------------- 4. forecast


def _rolling(panel, weeks: int, refit: int) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    cube = feature_cube(panel)
    total = panel.counts.shape[1]
    rows = []
    model = None
    for k, o in enumerate(range(total - weeks, total)):
        if k % refit == 0:
            model = CaseForecaster().fit(panel, until=o, cube=cube)
        assert model is not None
        live = panel.first < o
        rows.append(pd.DataFrame({
            "y": panel.counts[live, o], "model": model.expected(panel, o, cube=cube)[live],
            "naive (last week)": cube[live, o, FEATURES.index("lag1")],
            "seasonal naive (a year ago)": cube[live, o, FEATURES.index("last_year")],
            "13-week mean": cube[live, o, FEATURES.index("mean13")]}))
    return pd.concat(rows)


def forecast(data: Path, weeks: int, refit: int) -> None:
    from scipy.stats import poisson
    df = sf311(data)
    last_full = df.Opened.max().to_period("W-SUN").start_time  # drop the partial last week
    df = df[df.Opened < last_full]
    df["city"] = "SF"
    print(f"  SF 311 weekly counts, rolling origin over the last {weeks} weeks (1 week ahead; "
          f"model refitted every {refit} weeks on everything before the origin). Deviance of a "
          "baseline uses the floor (0.005 … 0.2) that suits it best (zero forecasts have "
          "infinite deviance); MAE of the model is given for its mean and for its Poisson "
          "median (the MAE-optimal point)")
    for label, area, cat in (("neighbourhood × category", "Neighborhood", "Category"),
                             ("city × category", "city", "Category"),
                             ("neighbourhood (all classes)", "Neighborhood", "city")):
        t0 = time.perf_counter()
        panel = weekly_panel(df, area=area, category=cat, at="Opened")
        r = _rolling(panel, weeks, refit)
        y = r.y.to_numpy()
        print(f"    {label}: {panel.counts.shape[0]} series, {len(r)} series-weeks, mean "
              f"{y.mean():.3f} cases per series-week ({time.perf_counter() - t0:.0f} s)")
        for name in ("model", "naive (last week)", "seasonal naive (a year ago)",
                     "13-week mean"):
            mu = r[name].to_numpy()
            dev = min(poisson_deviance(y, np.maximum(mu, f))
                      for f in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2))
            extra = ""
            if name == "model":
                dev = poisson_deviance(y, np.maximum(mu, 1e-6))
                med = poisson.ppf(0.5, np.maximum(mu, 1e-9))
                extra = f" (median point: MAE {np.mean(np.abs(y - med)):.4f})"
            print(f"      {name:30s} MAE {np.mean(np.abs(y - mu)):.4f}{extra}  "
                  f"Poisson deviance {dev:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--only", default="classify,dispatch,similar,forecast")
    ap.add_argument("--scale", type=int, default=1_000_000,
                    help="cases in the synthetic similar-case index (0: skip)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--refit", type=int, default=4)
    ap.add_argument("--retrain", default="monthly,weekly",
                    help="dispatch lines retrained per period (monthly, weekly; '' for none)")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[1] / "test-artifacts" / "intelligence")
    args = ap.parse_args()
    if not (args.data / "text").is_dir():
        sys.exit(f"real data not found under {args.data} (give --data …/shared/data)")
    args.out.mkdir(parents=True, exist_ok=True)
    header()
    only = set(args.only.split(","))
    for key, title, run in (
            ("classify:zh", "智能分类 smart classification — Chinese",
             lambda: chinese(args.data)),
            ("classify:en", "智能分类 smart classification — English",
             lambda: english(args.data, args.out)),
            ("dispatch", "智能派遣 learned dispatch",
             lambda: dispatch(args.data, args.out, set(args.retrain.split(",")))),
            ("similar", "相似案例推荐 similar cases",
             lambda: similar(args.data, args.scale, args.runs)),
            ("forecast", "未诉先办 / 全域预警 forecast",
             lambda: forecast(args.data, args.weeks, args.refit))):
        if key in only or key.split(":")[0] in only:
            t0 = time.perf_counter()
            print(f"\n== {title}")
            run()
            print(f"  ({time.perf_counter() - t0:.0f} s)")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
