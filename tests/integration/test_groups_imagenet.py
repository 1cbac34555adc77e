"""ImageNet's answers by animal group on real photos: the ImageNet network itself (its ONNX engine built) groups a
cat, a panda, a retriever and names an unreadable file, and `zoolens predict --imagenet --groups` prints the group.
The groups' tables alone: tests/unit/test_groups.py."""

from zoolens.cli import main
from zoolens.inference.imagenet import ImageNetClassifier


def test_real_photos_get_their_group(chelsea, animals3, imagewoof, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    panda = sorted((animals3 / "panda").iterdir())[0]
    dog = sorted((imagewoof / "val" / "n02099601").iterdir())[0]  # golden retriever
    cat, bear, retriever, unreadable = ImageNetClassifier().predict([chelsea, panda, dog, broken], by_group=True)
    assert cat.label == "cat" and cat.confidence > 0.8 and cat.top[0][0] == "cat"
    assert bear.label == "panda" and bear.detail == "most likely giant panda"
    assert retriever.label == "dog" and retriever.describe().startswith("dog (")
    assert unreadable.error and unreadable.answer.startswith("error:")


def test_cli_predict_imagenet_groups(chelsea, capsys):
    assert main(["predict", "--imagenet", "--groups", str(chelsea)]) == 0
    line = capsys.readouterr().out.strip()
    assert "cat (" in line and "%" in line
