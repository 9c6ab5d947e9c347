"""Typed errors. Library code raises these; only asr.cli turns them into messages and exit codes."""


class AsrError(Exception):
    """Base class of every error the toolkit reports to a user."""


class FormatError(AsrError):
    """A file does not follow its format. The message names the file and line."""


class DataDirError(AsrError):
    """A Kaldi data directory is missing files or is inconsistent."""


class AudioError(AsrError):
    """Audio could not be read, decoded or cut. The message names the utterance."""


class FeatureError(AsrError):
    """Feature extraction or CMVN failed."""


class ConfigError(AsrError):
    """A configuration file or option is invalid."""


class AlignmentError(AsrError):
    """An alignment cannot be imported or does not match its features."""


class ModelError(AsrError):
    """A model, tree, transition model or model dir is missing or inconsistent."""


class TrainingError(AsrError):
    """Training cannot continue (e.g. repeated non-finite losses)."""


class LMError(AsrError):
    """A language model cannot be estimated, read or pruned."""


class GraphError(AsrError):
    """Decoding-graph construction failed."""


class DecodeError(AsrError):
    """Decoding or lattice processing failed."""
