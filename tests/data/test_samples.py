import torch

from privlens.data.samples import astronaut, lfw_faces, lfw_non_faces


def test_astronaut_api_unchanged():
    image = astronaut()
    assert image.shape == (3, 256, 256) and image.dtype == torch.float32
    assert astronaut(None).shape == (3, 512, 512)


def test_lfw_faces_are_upsampled_and_edge_padded():
    faces = lfw_faces()
    assert faces.shape == (100, 3, 150, 150) and faces.dtype == torch.float32
    assert faces.min() >= 0 and faces.max() <= 1
    assert torch.equal(faces[:, 0], faces[:, 1])  # grey replicated to RGB
    # edge padding: the 25 px border repeats the outermost row/column of the upsampled face
    assert torch.equal(faces[:, :, :25, 25:125], faces[:, :, 25:26, 25:125].expand(-1, -1, 25, -1))
    small = lfw_faces(face_px=50, pad_px=0)
    assert small.shape == (100, 3, 50, 50)
    assert not torch.equal(lfw_non_faces()[0], faces[0])
