"""Our own trained generators (emoji diffusion, fashion GAN / VAE / PixelCNN) from the
checkpoints the recipes in ``training/`` write: configs per recipe (``configs``), graph
export (``graph``), validation against PyTorch (``validate``), and quality measured by
the judges into the model card (``quality``)."""
