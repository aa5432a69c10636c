"""Deep networks behind the DL metrics (NestConvNeXt-IQA and its parts); torch is needed here."""
