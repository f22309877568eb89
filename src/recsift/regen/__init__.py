"""Dataset regeneration for sequential recommendation: DR4SR and DR4SR+.

Yin, Wang, Guo, Liu, Zhang, Zhao, Lian, Chen, "Dataset Regeneration for Sequential
Recommendation", KDD 2024 (``USTC-StarTeam/DR4SR``; ALGORITHMS.md §8).

* :func:`mine_patterns` — frequent in-window patterns and (sequence -> pattern) pairs.
* :class:`Regenerator`, :func:`pretrain` — encoder-decoder transformer with diversity promoter.
* :func:`regenerate` — batched hybrid (restrictive / generative) greedy decoding.
* :func:`train_bilevel`, :func:`hypergradient` — DR4SR+ personalizer, implicit gradients.
* curators ``dr4sr`` and ``dr4sr_plus`` (:mod:`.curator`), and :func:`regenerate_dataset`.

When not to use: on data with no repeated item patterns (support < 2 almost everywhere)
mining finds nothing and the regenerator has nothing to learn from.
"""
from . import curator as _curator  # noqa: F401  (registers the dr4sr and dr4sr_plus curators)
from .curator import SEGMENTS, Regenerated, regenerate_dataset
from .inference import decode_batch, regenerate, unique_sequences
from .patterns import MinedPatterns, mine_patterns
from .personalizer import BilevelConfig, Personalizer, hypergradient, neumann_inverse_hvp, sample_weights, train_bilevel
from .regenerator import RegenConfig, Regenerator, pretrain, source_tokens, target_tokens

__all__ = ["BilevelConfig", "MinedPatterns", "Personalizer", "RegenConfig", "Regenerated", "Regenerator", "SEGMENTS",
           "decode_batch", "hypergradient", "mine_patterns", "neumann_inverse_hvp", "pretrain", "regenerate",
           "regenerate_dataset", "sample_weights", "source_tokens", "target_tokens", "train_bilevel",
           "unique_sequences"]
