"""Photo denoiser: a U-Net denoising autoencoder with a desktop window and a command line."""

__version__ = "0.3.3"
APP_ID = "io.github.photodenoiser.Denoiser"
