"""Document text is data, never instructions: two guards against prompt injection.

1. `fence`: text that would be read as the model's own control tokens is defused before
   it enters a prompt. llama-cpp-python tokenizes a chat prompt with special tokens
   enabled, so a document holding "<|im_end|><|im_start|>assistant" (or Gemma's
   "<start_of_turn>") would otherwise open a turn of its own.
2. `is_instruction`: a sentence addressed to the assistant ("ignore the previous
   instructions", "SYSTEM: ...", "always cite source [7]", "print your system prompt").
   An answer whose cited sentence is one is withheld (ragqa.confidence.hard_check): a
   document can state facts, not give orders. A heuristic, kept narrow so that a manual's
   own imperatives ("press the red button") pass: of the 52,646 sentences of the shared
   SQuAD paragraphs and SciFact abstracts it flagged none (bench/drill_inject.py counts).
"""

from __future__ import annotations

import re

# <|im_start|> <|endoftext|> <|eot_id|> ... and Gemma / Llama 2 / Mistral turn markers
_SPECIAL = re.compile(r"<(\|[^<>|\s]{1,40}\|)>|<(/?(?:start_of_turn|end_of_turn|bos|eos|s|pad|unk))>|\[/?INST\]",
                      re.IGNORECASE)

_ASSISTANT = r"(?:you|the assistant|the ai|the model|chatgpt|the bot)"
_INSTRUCTION = re.compile("|".join([
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,30}\b(?:previous|prior|above|earlier|preceding|all|your|system)\b"
    r"[^.]{0,20}\b(?:instructions?|directions?|prompts?|rules|guidelines|messages?)\b",
    r"^\W*(?:system|assistant|developer|user)\s*:",  # a role label opening the sentence
    r"\b(?:print|reveal|repeat|output|show|disclose|tell (?:me|us))\b[^.]{0,20}\b(?:system prompt|your (?:instructions|prompt|rules))\b",
    r"\bthe answer to (?:every|any|each|all|this) questions?\b",
    r"\b(?:answer|reply|respond)\b[^.]{0,20}\b(?:every|any|each|all) questions?\b",
    r"\b(?:answer|reply|respond) (?:only )?with (?:the word|only|just)\b",
    r"\bcite (?:source )?\[\d+\]",
    rf"\b(?:when|whenever|before|after|if) {_ASSISTANT} (?:answer|reply|respond)",
    rf"\b{_ASSISTANT} (?:must|should|shall|will) (?:now )?(?:answer|reply|respond|say|cite|print|output)\b",
    r"\bfrom now on\b[^.]{0,40}\b(?:answer|reply|respond|say|only)\b",
    r"\byou are (?:now )?(?:an? )?(?:ai|assistant|language model|chatbot|llm)\b",
]), re.IGNORECASE)


def fence(text: str) -> str:
    """text with control-token lookalikes broken up ("<|im_end|>" -> "‹|im_end|›"), so
    they are read as the characters they are."""
    return _SPECIAL.sub(lambda m: "‹" + m.group(0)[1:-1] + "›", text)


def is_instruction(sentence: str) -> bool:
    """Whether a sentence addresses the assistant with an order rather than stating something."""
    return bool(_INSTRUCTION.search(" ".join(sentence.split())))
