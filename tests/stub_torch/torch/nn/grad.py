"""torch.nn.grad's two backward convolutions, as ticks of a virtual clock (torch/__init__.py)."""
import torch


def _same_dtype(a, b):
    # PyTorch refuses a convolution of tensors of different dtypes.
    if a.dtype != b.dtype:
        raise RuntimeError("expected scalar type %s but found %s" % (a.dtype, b.dtype))


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    _same_dtype(weight, grad_output)
    torch._work()
    return torch.Tensor(input_size, weight.dtype, weight.memory_format)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    _same_dtype(input, grad_output)
    torch._work()
    return torch.Tensor(weight_size, input.dtype, input.memory_format)
