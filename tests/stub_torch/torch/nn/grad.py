"""torch.nn.grad's two backward convolutions, as ticks of a virtual clock (torch/__init__.py)."""
import torch


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    torch._work()
    return torch.Tensor(input_size)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    torch._work()
    return torch.Tensor(weight_size)
