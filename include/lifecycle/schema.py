"""The transaction and label contracts shared by generator, validation, features and serving."""

TRANSACTION_COLUMNS = (
    "transaction_id",
    "card_id",
    "merchant_id",
    "amount",
    "merchant_category",
    "country",
    "channel",
    "event_timestamp",
)
LABEL_COLUMNS = ("transaction_id", "is_fraud", "labeled_at")
DATASETS = ("transactions", "labels")  # the two feeds a day lands: transactions, and the labels known that day

MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "electronics",
    "travel",
    "fashion",
    "digital_goods",
    "pharmacy",
)
CHANNELS = ("pos", "online", "contactless")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "BR", "NG", "IN", "CN")

# What the model sees besides stored features: fields of the scoring request itself.
REQUEST_CATEGORICALS = ("merchant_category", "channel", "country")
REQUEST_NUMERICS = ("amount", "hour")

# Training candidates (one Airflow task each) and the registry aliases of the model's lifecycle.
CANDIDATES = ("xgboost", "pytorch_mlp", "sklearn_logistic")
CHALLENGER, CHAMPION, PREVIOUS = "challenger", "champion", "previous_champion"
CANARY = "canary"  # the version a configured share of live traffic goes to
SHADOW = "shadow"  # the prediction log's arm for the challenger's scores, never returned to a caller
