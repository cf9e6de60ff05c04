"""ONNX export of the ensemble members (skl2onnx, with onnxmltools' LightGBM converter).

Every member takes ONE float32 input `features` [N, n_inputs] and outputs `probabilities`
[N, 2] (ZipMap disabled; column 1 = P(fraud)). Opsets: ai.onnx 15, ai.onnx.ml 3.

Tree thresholds: LightGBM keeps double thresholds and compares `x <= t`; ONNX
TreeEnsemble stores float32 thresholds. The service feeds float32 inputs, so each
threshold is stored as the largest float32 <= t (not the nearest float32): for every
float32 x, `x <= t` iff `x <= floor32(t)`, and the ONNX trees take exactly the native
paths on float32 inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

TARGET_OPSET = {"": 15, "ai.onnx.ml": 3}
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
OUTPUT_INDEX = 1

_registered = False


def _register_lightgbm() -> None:
    global _registered
    if _registered:
        return
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    _registered = True


def _floor32(t: float) -> np.float32:
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


def _lightgbm_thresholds(booster) -> dict[tuple[int, int, np.float32], set[np.float32]]:
    """(tree, feature, nearest float32 of t) -> {floor32(t)} for every numerical split."""
    dump = booster.dump_model()
    out: dict[tuple[int, int, np.float32], set[np.float32]] = {}
    for ti, tree in enumerate(dump["tree_info"]):
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" not in node:
                continue
            if node.get("decision_type") != "<=":
                raise ValueError(f"unsupported LightGBM split {node.get('decision_type')!r}")
            t = float(node["threshold"])
            out.setdefault((ti, int(node["split_feature"]), np.float32(t)), set()).add(_floor32(t))
            stack += [node["left_child"], node["right_child"]]
    return out


def _fix_tree_thresholds(model: onnx.ModelProto, booster) -> int:
    lookup = _lightgbm_thresholds(booster)
    changed = 0
    for node in model.graph.node:
        if node.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            continue
        attrs = {a.name: a for a in node.attribute}
        tree_ids = list(attrs["nodes_treeids"].ints)
        feat_ids = list(attrs["nodes_featureids"].ints)
        modes = [m.decode() for m in attrs["nodes_modes"].strings]
        values = np.array(attrs["nodes_values"].floats, dtype=np.float32)
        for i, mode in enumerate(modes):
            if mode == "LEAF":
                continue
            if mode != "BRANCH_LEQ":
                raise ValueError(f"unexpected tree node mode {mode}")
            cands = lookup.get((tree_ids[i], feat_ids[i], values[i]))
            if not cands:
                raise ValueError(f"tree {tree_ids[i]}: threshold {values[i]} not found in the LightGBM dump")
            if len(cands) > 1:
                raise ValueError(f"tree {tree_ids[i]}: ambiguous float32 threshold {values[i]}")
            new = next(iter(cands))
            if new != values[i]:
                values[i] = new
                changed += 1
        del attrs["nodes_values"].floats[:]
        attrs["nodes_values"].floats.extend(values.tolist())
    return changed


def to_onnx(estimator, n_inputs: int, name: str) -> onnx.ModelProto:
    from lightgbm import LGBMClassifier
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _register_lightgbm()
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}}
    model = convert_sklearn(
        estimator,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_inputs]))],
        target_opset=TARGET_OPSET,
        options=options,
    )
    if isinstance(final, LGBMClassifier):
        _fix_tree_thresholds(model, final.booster_)
    # skl2onnx may list a domain twice in opset_import: keep one entry per domain (the highest).
    best: dict[str, int] = {}
    for o in model.opset_import:
        best[o.domain] = max(best.get(o.domain, 0), o.version)
    del model.opset_import[:]
    for domain, version in sorted(best.items()):
        model.opset_import.append(helper.make_opsetid(domain, version))
    outs = [o.name for o in model.graph.output]
    if OUTPUT_NAME not in outs:
        raise RuntimeError(f"{name}: ONNX outputs {outs} lack {OUTPUT_NAME!r}")
    model.producer_name = "fraudscore-training"
    model.doc_string = f"fraudscore member {name}: input {INPUT_NAME} float32 [N,{n_inputs}] -> {OUTPUT_NAME} [N,2]"
    onnx.checker.check_model(model)
    return model


def session(model: onnx.ModelProto | bytes | str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def predict(sess, X: np.ndarray) -> np.ndarray:
    out = sess.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(X, dtype=np.float32)})[0]
    return out[:, OUTPUT_INDEX].astype(np.float64)


__all__ = ["TARGET_OPSET", "INPUT_NAME", "OUTPUT_NAME", "OUTPUT_INDEX", "to_onnx", "session", "predict", "helper"]
