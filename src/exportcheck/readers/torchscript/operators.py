"""The operators TorchScript code may run while `torch.jit.load` builds the model (docs/security.md).

Code a load runs (`__setstate__` and what it calls) is judged against `LOAD_TIME_ALLOWED`: each
family below computes on values already in memory and has no argument that names a file, a
process or a socket. An operator off the list is unsafe at load time, however harmless it may
be: the list is short on purpose. `FILE_SYSTEM` are the operators that open files; they are
reported wherever they appear.
"""

from __future__ import annotations

# Python's own spellings the printer writes as plain calls, and the operator each one is.
BUILTINS: dict[str, str] = {
    "annotate": "prim::annotate",
    "unchecked_cast": "prim::unchecked_cast",
    "uninitialized": "prim::Uninitialized",
    "isinstance": "prim::isinstance",
    "hasattr": "prim::hasattr",
    "getattr": "prim::GetAttr",
    "print": "prim::Print",
    "range": "aten::range",
    "enumerate": "prim::enumerate",
    "zip": "prim::zip",
    "len": "aten::len",
    "int": "aten::Int",
    "float": "aten::Float",
    "bool": "aten::Bool",
    "complex": "aten::Complex",
    "str": "aten::str",
    "list": "aten::list",
    "dict": "aten::dict",
    "tuple": "prim::TupleConstruct",
    "min": "prim::min",
    "max": "prim::max",
    "abs": "prim::abs",
    "round": "aten::round",
    "divmod": "aten::divmod",
    "ord": "aten::ord",
    "chr": "aten::chr",
    "hex": "aten::hex",
    "oct": "aten::oct",
    "bin": "aten::bin",
    "all": "aten::all",
    "any": "aten::any",
    "sum": "aten::sum",
    "sorted": "aten::sorted",
    "fork": "prim::fork",
    "wait": "aten::wait",
    "__new__": "prim::CreateObject",
}

_ARITHMETIC = """
add add_ sub sub_ mul mul_ div div_ floordiv remainder fmod pow neg abs floor ceil round trunc
frac sqrt rsqrt exp log log2 log10 log1p expm1 sin cos tan asin acos atan atan2 sinh cosh tanh
sigmoid relu clamp clamp_ clamp_min clamp_max sign gcd factorial isnan isinf isfinite copysign
lerp reciprocal erf erfc __and__ __or__ __xor__ __not__ __lshift__ __rshift__ __iand__ __ior__
__ixor__ __ilshift__ __irshift__ bitwise_and bitwise_or bitwise_xor bitwise_not
logical_and logical_or logical_not logical_xor maximum minimum max min argmax argmin
""".split()
_COMPARISON = "eq ne lt gt le ge __is__ __isnot__ __contains__ equal allclose isclose".split()
_TENSOR_SHAPE = """
size dim numel t transpose permute view view_as reshape reshape_as flatten unflatten squeeze
unsqueeze expand expand_as contiguous is_contiguous chunk split split_with_sizes unbind cat
stack select slice narrow index_select masked_select gather index repeat flip roll movedim
""".split()
_TENSOR_VALUES = """
zeros zeros_like ones ones_like empty empty_like full full_like arange linspace eye tensor
scalar_tensor as_tensor clone detach detach_ copy_ fill_ zero_ to type_as requires_grad_
item sum mean prod std var norm cumsum cumprod sort topk any all where masked_fill masked_fill_
index_put_ index_fill_ scatter scatter_ matmul mm bmm addmm dot is_floating_point is_complex
ScalarImplicit Int Float Bool Complex IntImplicit FloatImplicit ComplexImplicit NumToTensor
_set_item __getitem__ __setitem__ __derive_index __range_length dequantize quantize_per_tensor
quantize_per_channel q_scale q_zero_point q_per_channel_scales q_per_channel_zero_points
q_per_channel_axis qscheme int_repr _empty_affine_quantized _empty_per_channel_affine_quantized
_make_per_tensor_quantized_tensor _make_per_channel_quantized_tensor
""".split()
_CONTAINERS = """
append extend insert pop remove clear copy reverse count list len range keys values items get
setdefault update dict popitem _list_to_tensor tolist
""".split()
_STRINGS = """
str format join split strip lstrip rstrip lower upper startswith endswith replace find rfind
isdigit isalpha isalnum isspace islower isupper capitalize title center ljust rjust zfill
partition rpartition splitlines swapcase casefold expandtabs ord chr hex oct bin divmod
""".split()
_PRIM = """
RaiseException Uninitialized unchecked_cast annotate isinstance hasattr GetAttr enumerate zip
TupleConstruct TupleUnpack TupleIndex ListConstruct ListUnpack DictConstruct min max abs
device dtype layout data is_cuda is_cpu is_quantized is_meta requires_grad shape
CreateObject NumToTensor unchecked_unwrap_optional fork
""".split()
# Quantized modules rebuild their packed weights in `__setstate__` (`set_weight_bias`).
_QUANTIZED = """
linear_prepack linear_prepack_fp16 linear_unpack linear_unpack_fp16 conv1d_prepack
conv2d_prepack conv3d_prepack conv1d_unpack conv2d_unpack conv3d_unpack conv_transpose1d_prepack
conv_transpose2d_prepack conv_transpose3d_prepack conv_transpose1d_unpack
conv_transpose2d_unpack conv_transpose3d_unpack embedding_bag_prepack embedding_bag_unpack
make_quantized_cell_params make_quantized_cell_params_dynamic make_quantized_cell_params_fp16
""".split()

LOAD_TIME_ALLOWED: frozenset[str] = frozenset(
    [f"aten::{name}" for name in (*_ARITHMETIC, *_COMPARISON, *_TENSOR_SHAPE, *_TENSOR_VALUES)]
    + [f"aten::{name}" for name in (*_CONTAINERS, *_STRINGS)]
    + [f"prim::{name}" for name in _PRIM]
    + [f"quantized::{name}" for name in _QUANTIZED]
    + ["aten::wait"]
)
# Methods of torch's own C++ classes (`torch.classes.NS.Class`) in these namespaces: the
# quantized packed-weight holders, whose methods only pack and unpack tensors.
CUSTOM_CLASS_NAMESPACES_ALLOWED = frozenset({"quantized"})

# Operators that read or write a file named by their arguments: unsafe wherever they appear.
FILE_SYSTEM: frozenset[str] = frozenset({"aten::from_file", "aten::save", "aten::load"})


def allowed_at_load_time(op: str) -> bool:
    if op in LOAD_TIME_ALLOWED:
        return True
    if op.startswith("classes::"):
        return op[len("classes::") :].split(".", 1)[0] in CUSTOM_CLASS_NAMESPACES_ALLOWED
    return False
