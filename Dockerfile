# One image for the services and the dashboard; docker-compose.yml picks one by its command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 POLICYTRACK_DATA_DIR=/data \
    POLICYTRACK_WORKING_DAYS_FILE=/app/deploy/working-days.toml
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY services ./services
COPY policytrack ./policytrack
COPY deploy/working-days.toml ./deploy/working-days.toml
RUN pip install --no-cache-dir -c constraints.txt . && useradd --uid 10001 policytrack \
    && mkdir /data /keys /credentials && chown policytrack /data /keys /credentials && chmod 700 /keys /credentials
USER policytrack
VOLUME ["/data", "/keys", "/credentials"]
CMD ["python", "-m", "services.tasks"]
