"""Image transforms for training (ReID augmentation) and testing."""

from __future__ import annotations

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transforms(
    size: tuple[int, int],
    train: bool,
    *,
    flip: float = 0.5,
    pad: int = 10,
    erasing: float = 0.5,
    color_jitter: float = 0.0,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> T.Compose:
    """Resize to `size` = (height, width); training adds flip, pad + random crop, colour jitter, erasing."""
    ops: list = [T.Resize(size, interpolation=T.InterpolationMode.BICUBIC)]
    if train:
        if flip > 0:
            ops.append(T.RandomHorizontalFlip(p=flip))
        if pad > 0:
            ops += [T.Pad(pad), T.RandomCrop(size)]
        if color_jitter > 0:
            c = color_jitter
            ops.append(T.ColorJitter(brightness=c, contrast=c, saturation=c, hue=min(c / 2, 0.5)))
    ops += [T.ToTensor(), T.Normalize(mean, std)]
    if train and erasing > 0:
        # value 0 after normalisation = the dataset-mean pixel, as in the ReID random-erasing recipe
        ops.append(T.RandomErasing(p=erasing, value=0))
    return T.Compose(ops)
