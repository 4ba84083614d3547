"""The part of Caffe's ``caffe.proto`` that VGG-Face files use, declared at run time.

No Caffe install and no ``protoc`` step: the messages are written down here as data
(field name, number, label, type and default exactly as in BVLC/caffe
``src/caffe/proto/caffe.proto``), turned into a ``FileDescriptorProto`` and handed to
the protobuf runtime, which then parses binary ``.caffemodel`` messages and text
``.prototxt`` files and writes both. Fields outside this subset survive in binary files
as unknown fields and are skipped in text files.

One field is gender-cli's own: ``NetParameter.gender_cli_standin`` (number 77001, far
from Caffe's), the stand-in marker. Caffe and OpenCV ignore it as an unknown field.
"""

from __future__ import annotations

from functools import lru_cache

OPTIONAL, REPEATED = "optional", "repeated"
STANDIN_FIELD = "gender_cli_standin"

# (name, number, label, type, default); type is a scalar type name, "enum:Name" or a message name.
_ENGINE = ("DEFAULT", "CAFFE", "CUDNN")
ENUMS = {
    "Phase": ("TRAIN", "TEST"),
    "FillerParameter.VarianceNorm": ("FAN_IN", "FAN_OUT", "AVERAGE"),
    "ConvolutionParameter.Engine": _ENGINE,
    "PoolingParameter.PoolMethod": ("MAX", "AVE", "STOCHASTIC"),
    "PoolingParameter.Engine": _ENGINE,
    "PoolingParameter.RoundMode": ("CEIL", "FLOOR"),
    "LRNParameter.NormRegion": ("ACROSS_CHANNELS", "WITHIN_CHANNEL"),
    "LRNParameter.Engine": _ENGINE,
    "ReLUParameter.Engine": _ENGINE,
    "SoftmaxParameter.Engine": _ENGINE,
    "LossParameter.NormalizationMode": ("FULL", "VALID", "BATCH_SIZE", "NONE"),
    "ParamSpec.DimCheckMode": ("STRICT", "PERMISSIVE"),
}
# V1LayerParameter.LayerType: name -> number (not in declaration order).
V1_LAYER_TYPES = {
    "NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3,
    "CONTRASTIVE_LOSS": 37, "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6,
    "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7, "ELTWISE": 25, "EXP": 38, "FLATTEN": 8,
    "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28, "IM2COL": 11, "IMAGE_DATA": 12,
    "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15, "MEMORY_DATA": 29,
    "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26, "RELU": 18,
    "SIGMOID": 19, "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20,
    "SOFTMAX_LOSS": 21, "SPLIT": 22, "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31,
}
# Caffe's UpgradeV1LayerType for the types gender-cli converts or reads as input.
V1_TO_TYPE = {
    "CONVOLUTION": "Convolution", "INNER_PRODUCT": "InnerProduct", "POOLING": "Pooling",
    "RELU": "ReLU", "LRN": "LRN", "DROPOUT": "Dropout", "SOFTMAX": "Softmax",
    "DATA": "Data", "IMAGE_DATA": "ImageData", "MEMORY_DATA": "MemoryData",
    "DUMMY_DATA": "DummyData", "HDF5_DATA": "HDF5Data", "WINDOW_DATA": "WindowData",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "ACCURACY": "Accuracy", "FLATTEN": "Flatten",
    "CONCAT": "Concat", "ELTWISE": "Eltwise", "SPLIT": "Split", "DECONVOLUTION": "Deconvolution",
}

MESSAGES = {
    "BlobShape": [("dim", 1, REPEATED, "int64", None)],
    "BlobProto": [
        ("shape", 7, OPTIONAL, "BlobShape", None),
        ("data", 5, REPEATED, "float", None),
        ("diff", 6, REPEATED, "float", None),
        ("double_data", 8, REPEATED, "double", None),
        ("double_diff", 9, REPEATED, "double", None),
        ("num", 1, OPTIONAL, "int64", "0"),
        ("channels", 2, OPTIONAL, "int64", "0"),
        ("height", 3, OPTIONAL, "int64", "0"),
        ("width", 4, OPTIONAL, "int64", "0"),
    ],
    "NetState": [
        ("phase", 1, OPTIONAL, "enum:Phase", "TEST"),
        ("level", 2, OPTIONAL, "int32", "0"),
        ("stage", 3, REPEATED, "string", None),
    ],
    "NetStateRule": [
        ("phase", 1, OPTIONAL, "enum:Phase", None),
        ("min_level", 2, OPTIONAL, "int32", None),
        ("max_level", 3, OPTIONAL, "int32", None),
        ("stage", 4, REPEATED, "string", None),
        ("not_stage", 5, REPEATED, "string", None),
    ],
    "ParamSpec": [
        ("name", 1, OPTIONAL, "string", None),
        ("share_mode", 2, OPTIONAL, "enum:ParamSpec.DimCheckMode", None),
        ("lr_mult", 3, OPTIONAL, "float", "1"),
        ("decay_mult", 4, OPTIONAL, "float", "1"),
    ],
    "FillerParameter": [
        ("type", 1, OPTIONAL, "string", "constant"),
        ("value", 2, OPTIONAL, "float", "0"),
        ("min", 3, OPTIONAL, "float", "0"),
        ("max", 4, OPTIONAL, "float", "1"),
        ("mean", 5, OPTIONAL, "float", "0"),
        ("std", 6, OPTIONAL, "float", "1"),
        ("sparse", 7, OPTIONAL, "int32", "-1"),
        ("variance_norm", 8, OPTIONAL, "enum:FillerParameter.VarianceNorm", "FAN_IN"),
    ],
    "TransformationParameter": [
        ("scale", 1, OPTIONAL, "float", "1"),
        ("mirror", 2, OPTIONAL, "bool", "false"),
        ("crop_size", 3, OPTIONAL, "uint32", "0"),
        ("mean_file", 4, OPTIONAL, "string", None),
        ("mean_value", 5, REPEATED, "float", None),
        ("force_color", 6, OPTIONAL, "bool", "false"),
        ("force_gray", 7, OPTIONAL, "bool", "false"),
    ],
    "LossParameter": [
        ("ignore_label", 1, OPTIONAL, "int32", None),
        ("normalization", 3, OPTIONAL, "enum:LossParameter.NormalizationMode", "VALID"),
        ("normalize", 2, OPTIONAL, "bool", None),
    ],
    "ConvolutionParameter": [
        ("num_output", 1, OPTIONAL, "uint32", None),
        ("bias_term", 2, OPTIONAL, "bool", "true"),
        ("pad", 3, REPEATED, "uint32", None),
        ("kernel_size", 4, REPEATED, "uint32", None),
        ("stride", 6, REPEATED, "uint32", None),
        ("dilation", 18, REPEATED, "uint32", None),
        ("pad_h", 9, OPTIONAL, "uint32", "0"),
        ("pad_w", 10, OPTIONAL, "uint32", "0"),
        ("kernel_h", 11, OPTIONAL, "uint32", None),
        ("kernel_w", 12, OPTIONAL, "uint32", None),
        ("stride_h", 13, OPTIONAL, "uint32", None),
        ("stride_w", 14, OPTIONAL, "uint32", None),
        ("group", 5, OPTIONAL, "uint32", "1"),
        ("weight_filler", 7, OPTIONAL, "FillerParameter", None),
        ("bias_filler", 8, OPTIONAL, "FillerParameter", None),
        ("engine", 15, OPTIONAL, "enum:ConvolutionParameter.Engine", "DEFAULT"),
        ("axis", 16, OPTIONAL, "int32", "1"),
        ("force_nd_im2col", 17, OPTIONAL, "bool", "false"),
    ],
    "PoolingParameter": [
        ("pool", 1, OPTIONAL, "enum:PoolingParameter.PoolMethod", "MAX"),
        ("pad", 4, OPTIONAL, "uint32", "0"),
        ("pad_h", 9, OPTIONAL, "uint32", "0"),
        ("pad_w", 10, OPTIONAL, "uint32", "0"),
        ("kernel_size", 2, OPTIONAL, "uint32", None),
        ("kernel_h", 5, OPTIONAL, "uint32", None),
        ("kernel_w", 6, OPTIONAL, "uint32", None),
        ("stride", 3, OPTIONAL, "uint32", "1"),
        ("stride_h", 7, OPTIONAL, "uint32", None),
        ("stride_w", 8, OPTIONAL, "uint32", None),
        ("engine", 11, OPTIONAL, "enum:PoolingParameter.Engine", "DEFAULT"),
        ("global_pooling", 12, OPTIONAL, "bool", "false"),
        ("round_mode", 13, OPTIONAL, "enum:PoolingParameter.RoundMode", "CEIL"),
    ],
    "InnerProductParameter": [
        ("num_output", 1, OPTIONAL, "uint32", None),
        ("bias_term", 2, OPTIONAL, "bool", "true"),
        ("weight_filler", 3, OPTIONAL, "FillerParameter", None),
        ("bias_filler", 4, OPTIONAL, "FillerParameter", None),
        ("axis", 5, OPTIONAL, "int32", "1"),
        ("transpose", 6, OPTIONAL, "bool", "false"),
    ],
    "LRNParameter": [
        ("local_size", 1, OPTIONAL, "uint32", "5"),
        ("alpha", 2, OPTIONAL, "float", "1"),
        ("beta", 3, OPTIONAL, "float", "0.75"),
        ("norm_region", 4, OPTIONAL, "enum:LRNParameter.NormRegion", "ACROSS_CHANNELS"),
        ("k", 5, OPTIONAL, "float", "1"),
        ("engine", 6, OPTIONAL, "enum:LRNParameter.Engine", "DEFAULT"),
    ],
    "DropoutParameter": [("dropout_ratio", 1, OPTIONAL, "float", "0.5")],
    "ReLUParameter": [
        ("negative_slope", 1, OPTIONAL, "float", "0"),
        ("engine", 2, OPTIONAL, "enum:ReLUParameter.Engine", "DEFAULT"),
    ],
    "SoftmaxParameter": [
        ("engine", 1, OPTIONAL, "enum:SoftmaxParameter.Engine", "DEFAULT"),
        ("axis", 2, OPTIONAL, "int32", "1"),
    ],
    "InputParameter": [("shape", 1, REPEATED, "BlobShape", None)],
}
_LAYER_PARAMS = [  # (field, LayerParameter number, V1LayerParameter number, message)
    ("transform_param", 100, 36, "TransformationParameter"),
    ("loss_param", 101, 42, "LossParameter"),
    ("convolution_param", 106, 10, "ConvolutionParameter"),
    ("dropout_param", 108, 12, "DropoutParameter"),
    ("inner_product_param", 117, 17, "InnerProductParameter"),
    ("lrn_param", 118, 18, "LRNParameter"),
    ("pooling_param", 121, 19, "PoolingParameter"),
    ("relu_param", 123, 30, "ReLUParameter"),
    ("softmax_param", 125, 39, "SoftmaxParameter"),
]
MESSAGES["LayerParameter"] = [
    ("name", 1, OPTIONAL, "string", None),
    ("type", 2, OPTIONAL, "string", None),
    ("bottom", 3, REPEATED, "string", None),
    ("top", 4, REPEATED, "string", None),
    ("phase", 10, OPTIONAL, "enum:Phase", None),
    ("loss_weight", 5, REPEATED, "float", None),
    ("param", 6, REPEATED, "ParamSpec", None),
    ("blobs", 7, REPEATED, "BlobProto", None),
    ("propagate_down", 11, REPEATED, "bool", None),
    ("include", 8, REPEATED, "NetStateRule", None),
    ("exclude", 9, REPEATED, "NetStateRule", None),
    ("input_param", 143, OPTIONAL, "InputParameter", None),
] + [(name, number, OPTIONAL, message, None) for name, number, _, message in _LAYER_PARAMS]
MESSAGES["V1LayerParameter"] = [
    ("bottom", 2, REPEATED, "string", None),
    ("top", 3, REPEATED, "string", None),
    ("name", 4, OPTIONAL, "string", None),
    ("include", 32, REPEATED, "NetStateRule", None),
    ("exclude", 33, REPEATED, "NetStateRule", None),
    ("type", 5, OPTIONAL, "enum:V1LayerParameter.LayerType", None),
    ("blobs", 6, REPEATED, "BlobProto", None),
    ("param", 1001, REPEATED, "string", None),
    ("blobs_lr", 7, REPEATED, "float", None),
    ("weight_decay", 8, REPEATED, "float", None),
    ("loss_weight", 35, REPEATED, "float", None),
] + [(name, number, OPTIONAL, message, None) for name, _, number, message in _LAYER_PARAMS]
MESSAGES["NetParameter"] = [
    ("name", 1, OPTIONAL, "string", None),
    ("input", 3, REPEATED, "string", None),
    ("input_shape", 8, REPEATED, "BlobShape", None),
    ("input_dim", 4, REPEATED, "int32", None),
    ("force_backward", 5, OPTIONAL, "bool", "false"),
    ("state", 6, OPTIONAL, "NetState", None),
    ("debug_info", 7, OPTIONAL, "bool", "false"),
    ("layer", 100, REPEATED, "LayerParameter", None),
    ("layers", 2, REPEATED, "V1LayerParameter", None),
    (STANDIN_FIELD, 77001, OPTIONAL, "string", None),
]
PACKED = {("BlobShape", "dim"), ("BlobProto", "data"), ("BlobProto", "diff"),
          ("BlobProto", "double_data"), ("BlobProto", "double_diff")}
# Field numbers the wire-level reader needs (see caffe_reader).
LAYER_BLOBS_FIELD = {"layer": 7, "layers": 6}
NET_LAYER_FIELDS = {100: "layer", 2: "layers"}
BLOB_FIELDS = {name: number for name, number, *_ in MESSAGES["BlobProto"]}


def _file_descriptor():
    from google.protobuf import descriptor_pb2

    FD = descriptor_pb2.FieldDescriptorProto
    scalar = {
        "int32": FD.TYPE_INT32, "int64": FD.TYPE_INT64, "uint32": FD.TYPE_UINT32,
        "float": FD.TYPE_FLOAT, "double": FD.TYPE_DOUBLE, "bool": FD.TYPE_BOOL, "string": FD.TYPE_STRING,
    }
    proto = descriptor_pb2.FileDescriptorProto(name="gender_cli/caffe_subset.proto", package="caffe", syntax="proto2")
    messages = {}
    for name in MESSAGES:
        messages[name] = proto.message_type.add(name=name)
    for enum_name, values in ENUMS.items():
        owner, _, short = enum_name.rpartition(".")
        enum = (messages[owner].enum_type if owner else proto.enum_type).add(name=short)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    layer_type = messages["V1LayerParameter"].enum_type.add(name="LayerType")
    for value, number in V1_LAYER_TYPES.items():
        layer_type.value.add(name=value, number=number)
    for message_name, fields in MESSAGES.items():
        for name, number, label, kind, default in fields:
            field = messages[message_name].field.add(name=name, number=number)
            field.label = FD.LABEL_REPEATED if label == REPEATED else FD.LABEL_OPTIONAL
            if kind in scalar:
                field.type = scalar[kind]
            elif kind.startswith("enum:"):
                field.type, field.type_name = FD.TYPE_ENUM, ".caffe." + kind[5:]
            else:
                field.type, field.type_name = FD.TYPE_MESSAGE, ".caffe." + kind
            if default is not None:
                field.default_value = default
            if (message_name, name) in PACKED:
                field.options.packed = True
    return proto


@lru_cache(maxsize=None)
def message_class(name: str):
    """The runtime class of ``caffe.<name>`` (``NetParameter``, ``BlobProto``, ...)."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"caffe.{name}"))


@lru_cache(maxsize=None)
def _pool():
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return pool


def layer_type_name(layer) -> str:
    """A layer's type as the current format spells it ("Convolution"), for V1 layers too."""
    if layer.DESCRIPTOR.name == "V1LayerParameter":
        if not layer.HasField("type"):
            return ""
        enum = layer.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number[layer.type].name
        return V1_TO_TYPE.get(enum, enum)
    return layer.type
