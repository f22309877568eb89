"""User-controllable data disclosure: IFRQE / IFRQE++ (Lin et al., "Would You Like Your Data to Be
Trained? A User Controllable Recommendation Framework", AAAI 2024; ALGORITHMS.md §11).

* `influence` — per-user s_test (LiSSA / CG / exact) and the influence of every training interaction.
* `willingness` — simulated unwillingness, the wv measure, the reward.
* `strategy` — IFRQE / IFRQE++ disclosure (exact 2^n for short histories, factorised beyond; or the
  released code's finite multiplicative-weights run from the prior, `solve_disclosure_mirror`), baselines.
* `protocol` — leave-one-out with 1 + 99 candidates, F1@5, BCE; `game` — anchors, retraining.
* `curator` — the ``ifrqe`` transforming curator and `explain_disclosure`.
"""
from . import curator as _curator  # noqa: F401  (registers the ifrqe curator)
from .curator import explain_disclosure, ifrqe_curator
from .game import GameConfig, default_train_config, fit_anchor, fit_anchors, run_disclosure, solve, train_disclosed
from .influence import (InfluenceConfig, InfluenceEstimator, InfluenceProblem, InfluenceResult, compute_influence,
                        conjugate_gradient, influence_problem, lissa, valid_bce)
from .protocol import (DisclosureData, check_players, disclosure_split, evaluate_disclosure, f1_at_k, order_rows,
                       prepare)
from .strategy import (BASELINES, Anchor, StrategyResult, action_bits, baseline_disclosure, exact_payoffs,
                       mirror_ascent, over_actions, solve_disclosure, solve_disclosure_mirror)
from .willingness import (category_unwillingness, check_lambda, check_unwillingness, draw_unwillingness,
                          per_user_violation, reward, willingness_violation)

__all__ = [
    "Anchor", "BASELINES", "DisclosureData", "GameConfig", "InfluenceConfig", "InfluenceEstimator",
    "InfluenceProblem", "InfluenceResult", "StrategyResult", "action_bits", "baseline_disclosure",
    "category_unwillingness", "check_lambda", "check_players", "check_unwillingness", "compute_influence",
    "conjugate_gradient", "default_train_config",
    "disclosure_split", "draw_unwillingness", "evaluate_disclosure", "exact_payoffs", "explain_disclosure",
    "f1_at_k", "fit_anchor", "fit_anchors", "ifrqe_curator", "influence_problem", "lissa", "mirror_ascent",
    "order_rows", "over_actions", "per_user_violation", "prepare", "reward", "run_disclosure", "solve",
    "solve_disclosure", "solve_disclosure_mirror", "train_disclosed", "valid_bce", "willingness_violation",
]
