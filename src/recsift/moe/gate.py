"""Noisy top-k gating (Shazeer et al. 2017) over frozen experts, as in the dataPruning4Rec seed.

ALGORITHMS.md §6.1–6.2. The gate input is ``[MLP_emb(session embedding) ; MLP_feat(features)]``;
clean logits ``c = W_g x``, noise scale ``softplus(W_n x) + eps``; while training the logits get
Gaussian noise, the top ``k`` are kept and soft-maxed, the others are 0. The balance loss is
``CV²(importance) + CV²(load)`` with the differentiable load estimate of the paper.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(d_in: int, d_out: int, hidden: int = 64, depth: int = 3) -> nn.Sequential:
    """``Linear(in, h) - ReLU - [Linear(h, h) - ReLU] x depth - Linear(h, out)`` (the seed's MLP)."""
    layers: list[nn.Module] = [nn.Linear(d_in, hidden), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Linear(hidden, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*layers)


def cv_squared(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Squared coefficient of variation ``Var / Mean²`` (unbiased variance); 0 for one expert."""
    if x.numel() <= 1:
        return x.new_zeros(())
    return x.float().var() / (x.float().mean() ** 2 + eps)


class NoisyTopKGate(nn.Module):
    """``G(x) = softmax(TopK(c + noise))`` scattered over ``n_experts``; also the balance loss."""

    def __init__(self, d_in: int, n_experts: int, k: int = 2, noise_eps: float = 1e-2, noisy: bool = True) -> None:
        super().__init__()
        if not 1 <= k <= n_experts:
            from ..errors import ConfigError

            raise ConfigError(f"top-k gating needs 1 <= k <= {n_experts} experts, got k={k}")
        self.n_experts, self.k, self.noise_eps, self.noisy = n_experts, k, noise_eps, noisy
        self.w_gate = nn.Linear(d_in, n_experts)
        self.w_noise = nn.Linear(d_in, n_experts)
        nn.init.zeros_(self.w_gate.weight)  # start uniform, as the paper's zero-initialised gate
        nn.init.zeros_(self.w_noise.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gates ``[B, E]`` (rows sum to 1, at most k non-zero) and the balance loss."""
        clean = self.w_gate(x)
        use_noise = self.noisy and self.training
        if use_noise:
            std = F.softplus(self.w_noise(x)) + self.noise_eps
            logits = clean + torch.randn_like(clean) * std
        else:
            logits = clean
        kk = min(self.k + 1, self.n_experts)
        top_v, top_i = logits.topk(kk, dim=1)
        gates = torch.zeros_like(logits).scatter(1, top_i[:, : self.k], torch.softmax(top_v[:, : self.k], dim=1))
        importance = gates.sum(0)
        if use_noise and self.k < self.n_experts:
            load = self._load(clean, logits, std, top_v).sum(0)
        else:
            load = (gates > 0).float().sum(0)
        return gates, cv_squared(importance) + cv_squared(load)

    def _load(self, clean: torch.Tensor, noisy: torch.Tensor, std: torch.Tensor, top_v: torch.Tensor) -> torch.Tensor:
        """P(expert i is in the top k under fresh noise), differentiable (Shazeer et al. appendix)."""
        normal = torch.distributions.Normal(clean.new_zeros(()), clean.new_ones(()))
        thr_in = top_v[:, self.k].unsqueeze(1)  # (k+1)-th largest: threshold for experts currently in
        thr_out = top_v[:, self.k - 1].unsqueeze(1)  # k-th largest: threshold for experts currently out
        is_in = noisy > thr_in
        p_in = normal.cdf((clean - thr_in) / std)
        p_out = normal.cdf((clean - thr_out) / std)
        return torch.where(is_in, p_in, p_out)


class MoEGate(nn.Module):
    """The seed's gate network: embedding MLP and feature MLP, concatenated, into a noisy top-k gate."""

    def __init__(self, d_emb: int, d_feat: int, n_experts: int, k: int = 2, hidden: int = 64,
                 noise_eps: float = 1e-2, noisy: bool = True) -> None:
        super().__init__()
        self.emb_mlp = mlp(d_emb, hidden, hidden)
        self.feat_mlp = mlp(d_feat, d_feat, hidden)
        self.gate = NoisyTopKGate(hidden + d_feat, n_experts, k, noise_eps, noisy)

    def forward(self, emb: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gate(torch.cat([self.emb_mlp(emb), self.feat_mlp(feats)], dim=1))
