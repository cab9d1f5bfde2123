"""The PSNR/SSIM protocol and benchmark-style evaluation."""
