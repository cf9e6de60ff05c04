import numpy as np
import pandas as pd
import pytest

from fraudscore_training import evaluate as ev


def _cp_example():
    rows = [
        # day, card, label, score
        (1, "a", 1, 0.9),
        (1, "b", 0, 0.8),
        (1, "c", 1, 0.7),
        (1, "d", 1, 0.1),
        (2, "a", 1, 0.95),  # a was found on day 1: removed
        (2, "c", 1, 0.9),
        (2, "e", 0, 0.5),
        (2, "f", 1, 0.4),
        (3, "d", 1, 0.2),  # card d: max score 0.85 (a legit tx), max label 1 (another tx)
        (3, "d", 0, 0.85),
        (3, "g", 1, 0.9),
        (3, "h", 0, 0.3),
    ]
    d = pd.DataFrame(rows, columns=["day", "card", "label", "score"])
    return d.day.to_numpy(), d.card.to_numpy(), d.label.to_numpy(), d.score.to_numpy()


def test_card_precision_top_k_known_example():
    mean, per_day = ev.card_precision_top_k(*_cp_example(), k=2)
    assert per_day == [0.5, 0.5, 1.0]
    assert mean == pytest.approx(2 / 3)
    mean, per_day = ev.card_precision_top_k(*_cp_example(), k=2, remove_detected=False)
    assert per_day == [0.5, 1.0, 1.0]


def test_card_precision_at_100_divides_by_100():
    day = np.array([0, 0, 0, 0])
    card = np.array([1, 2, 2, 3])
    label = np.array([0, 1, 0, 0])
    score = np.array([0.1, 0.2, 0.9, 0.3])
    mean, per_day = ev.card_precision_top_k(day, card, label, score, k=100)
    assert per_day == [0.01] and mean == 0.01


def test_test_mask_drops_cards_with_known_frauds():
    d = lambda s: pd.Timestamp(s)  # noqa: E731
    S = d("2018-08-08")
    rows = [
        # day, customer, fraud
        ("2018-07-24", "old", 1),  # before the handbook's training week [S-14, S-7) = 07-25..07-31: not known
        ("2018-07-31", "trainweek", 1),  # in the training week: known from the first test day
        ("2018-08-02", "delay1", 1),  # known on test day D when 2018-08-02 <= D - 8, i.e. from 08-10
        ("2018-08-08", "old", 0),
        ("2018-08-08", "trainweek", 0),
        ("2018-08-08", "delay1", 0),
        ("2018-08-09", "delay1", 0),
        ("2018-08-10", "delay1", 0),
        ("2018-08-15", "x", 0),  # outside the test week
    ]
    df = pd.DataFrame(rows, columns=["day", "CUSTOMER_ID", "TX_FRAUD"])
    df["day"] = pd.to_datetime(df["day"])
    m = ev.test_mask(df, S)
    kept = list(zip(df.loc[m, "day"].dt.strftime("%m-%d"), df.loc[m, "CUSTOMER_ID"]))
    assert kept == [("08-08", "old"), ("08-08", "delay1"), ("08-09", "delay1")]


def test_metrics_and_folds():
    test = pd.DataFrame(
        {
            "day": pd.to_datetime(["2018-08-08"] * 4),
            "CUSTOMER_ID": ["a", "b", "c", "d"],
            "TX_FRAUD": [1, 0, 1, 0],
        }
    )
    r = ev.metrics(test, np.array([0.9, 0.1, 0.8, 0.2]))
    assert r["auc_roc"] == 1.0 and r["average_precision"] == 1.0 and r["card_precision_at_100"] == 0.02
    s = ev.summarise_folds([{"auc_roc": 0.8, "average_precision": 0.6, "card_precision_at_100": 0.3},
                            {"auc_roc": 0.9, "average_precision": 0.7, "card_precision_at_100": 0.3}])
    assert s["auc_roc"]["mean"] == pytest.approx(0.85) and s["auc_roc"]["std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
