"""The intelligence room: models that learn from the case history (pure computation, no I/O).

- ``classify``  — 智能分类 smart classification: report text → category, top-k with reasons;
- ``dispatch``  — 智能派遣 learned dispatch: (class, text, place, time) → department, beside the
  rules (权责清单), learning from send-backs (退单); ``memory`` is its case memory;
- ``similar``   — 相似案例推荐 similar cases: the k most similar earlier cases;
- ``forecast``  — 未诉先办 / 全域预警: expected cases next week per area × class, and warnings;
- ``evaluation``, ``baselines`` — held-out scores, the activation check, honest baselines;
- ``serialize`` — model bytes with library versions for the model table.

Storage (reading the history, the model table, the active model of each server process) lives in
``layers.intelligence``; serving in ``api.routes.intelligence`` and intake. Nothing here imports
scikit-learn at package import: each module does, so ``import gridcore`` stays light.
"""
