"""RecBole 1.2.1 side of the parity benchmark (runs inside ``bench/.venv-recbole``, not recsift's venv).

Usage:
    bench/.venv-recbole/bin/python bench/recbole_side.py MODEL --epochs N --seed S --data-dir D --out FILE.json

MODEL is one of gru4rec, narm, sasrec, srgnn (RecBole class names GRU4Rec, NARM, SASRec, SRGNN, with
RecBole 1.2.1's default hyper-parameters). Data: ``D/ml-100k/ml-100k.inter`` (RecBole atomic file).

Protocol (kept identical to ``recsift_side.py``): leave-one-out by time per user (``LS: valid_and_test``,
``order: TO``; ties in timestamp keep file order because RecBole sorts stably), no user/item filtering,
full ranking over all items without history masking (RecBole never masks history for sequential
models), prefix augmentation with ``MAX_ITEM_LIST_LENGTH=50``, CE loss over all items, Adam lr 1e-3,
batch 2048, exactly N epochs (early stopping disabled), validation every epoch on NDCG@10.

Recorded per epoch: train loss (RecBole's sum of batch losses, and the mean per batch), the seconds
spent in the training part of the epoch only (``Trainer._train_epoch`` is timed; evaluation is
excluded), validation seconds and metrics. At the end: test metrics of the *last* epoch's model and of
RecBole's best-validation model (``evaluate(load_best_model=True)``), per-user test metrics (computed
with RecBole's own metric classes from the ``rec.topk`` DataStruct, one row per test user, in
RecBole's user order, with the raw user ids) and peak RSS. One JSON object is written to ``--out``
and printed as the last line of stdout; RecBole's own log goes to stderr.

Installation (``bench/recbole_parity.py`` does it when the venv is missing), on Python 3.11:
    python3 -m venv bench/.venv-recbole
    bench/.venv-recbole/bin/pip install "recbole==1.2.1" "numpy<2" "torch==2.13.0" "setuptools<81"
Snags found and how they are handled:
  * numpy<2: RecBole 1.2.1 uses ``np.float``/``np.bool`` etc.; it re-creates these aliases itself
    (``Config.compatibility_settings``) from ``np.float_`` …, which numpy 2 removed.
  * setuptools<81: ``recbole.quick_start`` imports ``ray`` (2.6.x gets resolved), which imports
    ``pkg_resources``; setuptools 81+ no longer ships it.
  * torch>=2.6 defaults ``torch.load(weights_only=True)``; RecBole's checkpoint holds its Config object,
    so the best-model reload fails. Patched below: ``torch.load`` defaults to ``weights_only=False``
    (the checkpoint is our own file, written by this process).
  * torch==2.13.0 exactly: it is the CPU wheel on local disk; a looser pin pulls a CUDA build.
Resolved on 2026-11-27 (Python 3.11.7) and known to work: recbole 1.2.1, torch 2.13.0+cpu, numpy 1.26.4,
pandas 3.0.6, scipy 1.17.1, scikit-learn 1.9.1, ray 2.6.3, tensorboard 2.21.0, thop 0.1.1.post2209072238,
setuptools 80.x (no pins were needed for pandas/scipy/ray/thop/tensorboard).
RecBole writes ``log/``, ``log_tensorboard/`` and checkpoints relative to the working directory; this
script runs in a temporary directory which it deletes at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json  # noqa: E402  (stdlib-only helper)

MODELS = {"gru4rec": "GRU4Rec", "narm": "NARM", "sasrec": "SASRec", "srgnn": "SRGNN"}
TOPK = (10, 20)
PER_USER = ("ndcg@10", "recall@10", "mrr@10", "ndcg@20", "recall@20")


def _patch_torch_load() -> None:
    import torch

    orig = torch.load

    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return orig(*args, **kwargs)

    torch.load = load


def recbole_config(epochs: int, seed: int, data_dir: str, checkpoint_dir: str) -> dict:
    """The RecBole config dict of the parity protocol (model hyper-parameters: RecBole defaults).

    Pure stdlib, so ``recbole_parity.py`` imports it to check that a cached result used this protocol.
    """
    return {
        "data_path": data_dir,
        "dataset": "ml-100k",
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "MAX_ITEM_LIST_LENGTH": 50,
        "train_batch_size": 2048,
        "eval_batch_size": 4096,
        "learning_rate": 0.001,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "epochs": epochs,
        "stopping_step": 10**9,
        "eval_step": 1,
        "metrics": ["Recall", "NDCG", "MRR", "Hit"],
        "topk": list(TOPK),
        "valid_metric": "NDCG@10",
        "metric_decimal_place": 6,
        "seed": seed,
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "log_wandb": False,
        "checkpoint_dir": checkpoint_dir,
        "save_dataset": False,
        "save_dataloaders": False,
    }


def protocol() -> dict:
    """The protocol part of the config (no paths, epochs or seed): the cache key's fingerprint."""
    cfg = recbole_config(0, 0, "", "")
    for k in ("data_path", "checkpoint_dir", "epochs", "seed"):
        cfg.pop(k)
    return cfg


def run(model_key: str, epochs: int, seed: int, data_dir: str, threads: int) -> dict:
    _patch_torch_load()
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.evaluator.metrics import MRR, NDCG, Hit, Recall
    from recbole.trainer import Trainer
    from recbole.utils import get_model, init_logger, init_seed

    history: list[dict] = []

    class TimedTrainer(Trainer):
        """RecBole's Trainer, with the training part of each epoch timed and every validation kept."""

        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            t0 = time.perf_counter()
            loss = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
            dt = time.perf_counter() - t0
            loss = float(sum(loss) if isinstance(loss, tuple) else loss)
            history.append({"epoch": epoch_idx + 1, "train_loss_sum": loss, "train_loss": loss / len(train_data),
                            "train_seconds": dt})
            return loss

        def _valid_epoch(self, valid_data, show_progress=False):
            t0 = time.perf_counter()
            score, result = super()._valid_epoch(valid_data, show_progress=show_progress)
            history[-1]["valid_seconds"] = time.perf_counter() - t0
            history[-1]["valid"] = {k: float(v) for k, v in result.items()}
            return score, result

    rec_name = MODELS[model_key]
    work = tempfile.mkdtemp(prefix="recbole_side_")
    cwd = os.getcwd()
    os.chdir(work)  # RecBole writes log/, log_tensorboard/ and saved/ relative to cwd
    try:
        t_start = time.perf_counter()
        config = Config(model=rec_name, dataset="ml-100k",
                        config_dict=recbole_config(epochs, seed, data_dir, os.path.join(work, "saved")))
        init_seed(config["seed"], config["reproducibility"])
        init_logger(config)
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        t_data = time.perf_counter()
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = TimedTrainer(config, model)

        # Capture each evaluation's DataStruct and the user ids of its rows (for per-user metrics).
        captured: dict = {}
        orig_eval = trainer.evaluator.evaluate
        orig_collect = trainer.eval_collector.eval_batch_collect
        uid_field = dataset.uid_field

        def evaluate_hook(struct):
            captured["struct"] = struct
            return orig_eval(struct)

        def collect_hook(scores, interaction, positive_u, positive_i):
            captured.setdefault("uids", []).append(interaction[uid_field].cpu().numpy())
            return orig_collect(scores, interaction, positive_u, positive_i)

        trainer.evaluator.evaluate = evaluate_hook
        trainer.eval_collector.eval_batch_collect = collect_hook

        def test(load_best: bool) -> tuple[dict, dict, list]:
            captured.clear()
            result = trainer.evaluate(test_data, load_best_model=load_best, show_progress=False)
            struct = captured["struct"]
            per_user = {}
            for name, cls in (("ndcg", NDCG), ("recall", Recall), ("mrr", MRR), ("hit", Hit)):
                m = cls(config)
                pos_index, pos_len = m.used_info(struct)
                # users x max(topk); MRR and Hit take only the hit matrix
                values = m.metric_info(pos_index, pos_len) if name in ("ndcg", "recall") else m.metric_info(pos_index)
                for k in TOPK:
                    if f"{name}@{k}" in PER_USER:
                        per_user[f"{name}@{k}"] = values[:, k - 1].astype(float).tolist()
            uids = np.concatenate(captured["uids"])
            raw = [str(t) for t in dataset.id2token(uid_field, uids)]
            return {k: float(v) for k, v in result.items()}, per_user, raw

        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        t_fit = time.perf_counter()
        test_last, per_user_last, users = test(load_best=False)
        test_best, per_user_best, users_best = test(load_best=True)
        assert users == users_best
        best_epoch = max(history, key=lambda h: h["valid"]["ndcg@10"])["epoch"]  # first max, like RecBole

        def se(x: list) -> float:
            a = np.asarray(x, dtype=float)
            return float(a.std(ddof=1) / np.sqrt(len(a)))

        import pandas

        train_secs = [h["train_seconds"] for h in history]
        return {
            "side": "recbole",
            "model": model_key,
            "recbole_model": rec_name,
            "epochs": epochs,
            "seed": seed,
            "threads": torch.get_num_threads(),
            "protocol": protocol(),
            "versions": {"recbole": recbole.__version__, "torch": torch.__version__, "numpy": np.__version__,
                         "pandas": pandas.__version__, "python": sys.version.split()[0]},
            "data": {"n_users": int(dataset.user_num - 1), "n_items": int(dataset.item_num - 1),
                     "n_rows_after_augmentation": int(dataset.inter_num), "n_train_samples": int(len(train_data._dataset)),
                     "n_valid_users": int(len(valid_data._dataset)), "n_test_users": len(users)},
            "model_params": int(sum(p.numel() for p in model.parameters())),
            "model_hparams": {k: config[k] for k in ("embedding_size", "hidden_size", "num_layers", "n_layers",
                                                      "n_heads", "inner_size", "dropout_prob", "dropout_probs",
                                                      "hidden_dropout_prob", "attn_dropout_prob", "step")
                              if config[k] is not None},
            "history": history,
            "median_train_seconds": float(np.median(train_secs)),
            "total_train_seconds": float(sum(train_secs)),
            "data_seconds": t_data - t_start,
            "fit_seconds": t_fit - t_data,
            "best_epoch": best_epoch,
            "test_last": test_last,
            "test_best": test_best,
            "se_last": {k: se(v) for k, v in per_user_last.items()},
            "se_best": {k: se(v) for k, v in per_user_best.items()},
            "test_users": users,
            "per_user_last": per_user_last,
            "per_user_best": per_user_best,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR", "../shared/datasets"))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("RECSIFT_THREADS", "2") or 2))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    if not (Path(data_dir) / "ml-100k" / "ml-100k.inter").is_file():
        sys.exit(f"no {data_dir}/ml-100k/ml-100k.inter; pass --data-dir or set RECSIFT_DATA_DIR")
    res = run(args.model, args.epochs, args.seed, data_dir, args.threads)
    emit_json(res, args.out)


if __name__ == "__main__":
    main()
