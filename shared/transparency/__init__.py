"""The transparency log's formats as outsiders check them: RFC 6962 Merkle trees and proofs,
C2SP checkpoints and signed notes."""
