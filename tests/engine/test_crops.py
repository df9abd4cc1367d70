import numpy as np

from rendering.engine.crops import crop, receptive_field_box


def test_receptive_field_boxes_are_clipped_at_the_image_border() -> None:
    box = receptive_field_box
    assert box(0, 0, map_size=(14, 14), input_size=224, receptive_field=100) == (0, 0, 58, 58)
    assert box(13, 13, map_size=(14, 14), input_size=224, receptive_field=100) == (
        166,
        166,
        224,
        224,
    )
    assert box(7, 3, map_size=(14, 14), input_size=224, receptive_field=100) == (70, 6, 170, 106)
    assert box(0, 6, map_size=(1, 7), input_size=224, receptive_field=500) == (0, 0, 224, 224)


def test_a_crop_keeps_the_proportions_of_a_clipped_box() -> None:
    image = np.zeros((224, 224, 3), dtype=np.uint8)
    image[:, :, 0] = 200
    square = crop(image, (70, 70, 170, 170), 50)
    assert square.shape == (50, 50, 3) and (square == (200, 0, 0)).all()
    tall = crop(image, (0, 0, 100, 50), 50)  # clipped on the left: half as wide as high
    assert tall.shape == (50, 50, 3)
    assert (tall[:, 20:30] == (200, 0, 0)).all()
    assert (tall[:, :10] == 255).all() and (tall[:, -10:] == 255).all()
