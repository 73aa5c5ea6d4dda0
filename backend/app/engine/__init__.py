"""The engine owns the models; everything else talks to it through requests and streams."""
