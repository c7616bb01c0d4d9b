"""Image transforms for training (ReID or fine-grained augmentation) and testing."""

from __future__ import annotations

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's RandomResizedCrop defaults, which FRPT's reference (fast-reid) also uses
CROP_SCALE = (0.16, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def build_transforms(
    size: tuple[int, int],
    train: bool,
    *,
    flip: float = 0.5,
    pad: int = 10,
    erasing: float = 0.5,
    color_jitter: float = 0.0,
    color_jitter_p: float = 1.0,
    color_jitter_hue: float | None = None,
    crop: str = "pad",
    resize: int = 0,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> T.Compose:
    """`size` = (height, width) of the model input. crop="pad": resize to `size`; training adds flip, pad +
    random crop, colour jitter, erasing. crop="random_resized": resize to `resize` x `resize`, then a random
    resized crop (training) or the centre crop (test) of `size`; flip, jitter and erasing as above."""
    bicubic = T.InterpolationMode.BICUBIC
    flips = [T.RandomHorizontalFlip(p=flip)] if train and flip > 0 else []
    if crop == "random_resized":  # fast-reid's order: resize, crop, flip
        ops: list = [T.Resize((resize, resize), interpolation=bicubic)]
        if train:
            ops.append(T.RandomResizedCrop(size, scale=CROP_SCALE, ratio=CROP_RATIO, interpolation=bicubic))
        else:
            ops.append(T.CenterCrop(size))
        ops += flips
    elif crop == "pad":  # the ReID order: resize, flip, pad + crop
        ops = [T.Resize(size, interpolation=bicubic), *flips]
        if train and pad > 0:
            ops += [T.Pad(pad), T.RandomCrop(size)]
    else:
        raise ValueError(f"unknown crop {crop!r}; valid: 'pad', 'random_resized'")
    if train and color_jitter > 0:
        c = color_jitter
        hue = min(c / 2, 0.5) if color_jitter_hue is None else color_jitter_hue
        jitter = T.ColorJitter(brightness=c, contrast=c, saturation=c, hue=hue)
        ops.append(jitter if color_jitter_p >= 1.0 else T.RandomApply([jitter], p=color_jitter_p))
    ops += [T.ToTensor(), T.Normalize(mean, std)]
    if train and erasing > 0:
        # torchvision's erasing, area 0.02-0.33, filled with 0 = the mean pixel after normalisation; the ReID
        # references' own (area up to 0.4, the raw means written into the normalised tensor) differs:
        # docs/deviations.md
        ops.append(T.RandomErasing(p=erasing, value=0))
    return T.Compose(ops)
