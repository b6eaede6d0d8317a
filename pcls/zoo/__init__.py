"""The pretrained model zoo: catalog (no paddle), downloads, cache and safe weight loading."""
