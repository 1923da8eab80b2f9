"""Fashion-MNIST models (PyTorch): the evaluation classifier, a conditional VAE and a
conditional GAN. The PixelCNN lives in ``pixelcnn.py``.

Generators take the class as a weight vector over the 10 classes ([B, 10], one-hot for a
plain class) rather than an index: a morph can then blend two classes as well as two
latent codes, and the graph stays one MatMul.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

NUM_CLASSES = 10


class Classifier(nn.Module):
    """The judge of every Fashion-MNIST pack: accuracy on generated images and the
    Fréchet distance of its 64-d penultimate features."""

    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 49, 128), nn.ReLU(), nn.Linear(128, self.feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, NUM_CLASSES)

    def forward(self, pixels):
        """pixels [B, 1, 28, 28] in [0, 1] -> (logits [B, 10], features [B, 64])."""
        feats = self.body(pixels)
        return self.head(feats), feats


class VAEEncoder(nn.Module):
    def __init__(self, z_dim: int = 16):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.SiLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.SiLU(), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(64 * 49 + NUM_CLASSES, 256), nn.SiLU(), nn.Linear(256, 2 * z_dim))

    def forward(self, pixels, class_weights):
        mean, logvar = self.fc(torch.cat([self.conv(pixels), class_weights], 1)).chunk(2, 1)
        return mean, logvar


class VAEDecoder(nn.Module):
    def __init__(self, z_dim: int = 16):
        super().__init__()
        self.z_dim = z_dim
        self.embed = nn.Linear(NUM_CLASSES, 32, bias=False)
        self.fc = nn.Sequential(nn.Linear(z_dim + 32, 256), nn.SiLU(), nn.Linear(256, 64 * 49), nn.SiLU())
        self.deconv = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))

    def logits(self, z, class_weights):
        h = self.fc(torch.cat([z, self.embed(class_weights)], 1)).reshape(-1, 64, 7, 7)
        return self.deconv(h)

    def forward(self, z, class_weights):
        """z [B, 16], class weights [B, 10] -> pixels [B, 1, 28, 28] in [0, 1]."""
        return torch.sigmoid(self.logits(z, class_weights))


class CVAE(nn.Module):
    def __init__(self, z_dim: int = 16):
        super().__init__()
        self.encoder, self.decoder = VAEEncoder(z_dim), VAEDecoder(z_dim)

    def loss(self, pixels, class_weights, beta: float = 1.0):
        mean, logvar = self.encoder(pixels, class_weights)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        rec = F.binary_cross_entropy_with_logits(self.decoder.logits(z, class_weights), pixels, reduction="sum") / len(pixels)
        kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum() / len(pixels)
        return rec + beta * kl, rec, kl


class Generator(nn.Module):
    def __init__(self, z_dim: int = 64, ch: int = 128):
        super().__init__()
        self.z_dim, self.ch = z_dim, ch
        self.embed = nn.Linear(NUM_CLASSES, z_dim, bias=False)
        self.fc = nn.Sequential(nn.Linear(2 * z_dim, ch * 49), nn.BatchNorm1d(ch * 49), nn.ReLU())
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2.0), nn.Conv2d(ch, ch // 2, 3, padding=1), nn.BatchNorm2d(ch // 2), nn.ReLU(),
            nn.Upsample(scale_factor=2.0), nn.Conv2d(ch // 2, ch // 4, 3, padding=1), nn.BatchNorm2d(ch // 4), nn.ReLU(),
            nn.Conv2d(ch // 4, 1, 3, padding=1),
        )

    def forward(self, z, class_weights):
        """z [B, 64], class weights [B, 10] -> pixels [B, 1, 28, 28] in [0, 1]."""
        h = self.fc(torch.cat([z, self.embed(class_weights)], 1)).reshape(-1, self.ch, 7, 7)
        return torch.tanh(self.net(h)) * 0.5 + 0.5


class Discriminator(nn.Module):
    """Spectral-normalised convolutions with a class projection (Miyato & Koyama 2018)."""

    def __init__(self, ch: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(1, ch, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(ch, 2 * ch, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * ch, 2 * ch, 3, 1, 1)), nn.LeakyReLU(0.2), nn.Flatten(),
        )
        self.fc = spectral_norm(nn.Linear(2 * ch * 49, 1))
        self.project = spectral_norm(nn.Embedding(NUM_CLASSES, 2 * ch * 49))

    def forward(self, pixels, labels):
        h = self.net(pixels * 2 - 1)
        return self.fc(h).squeeze(1) + (self.project(labels) * h).sum(1)
