#!/bin/bash
# The broker's entrypoint in docker-compose (the official apache/kafka image): the PLAIN
# credentials of the admin (inter-broker, controller, provisioning) and of the operator (kcat)
# come from the password files the `credentials` service made, never from the compose file;
# then the image's own start. Everything else is KAFKA_* environment in the compose file.
set -euo pipefail
admin="$(cat /credentials/admin)"
operator="$(cat /credentials/operator)"
plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$admin\""
scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
# The image turns KAFKA_A_B__C___D into a.b_c-d.
export KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG="$plain user_admin=\"$admin\";"
for listener in SASL__PLAINTEXT HOST; do
  export "KAFKA_LISTENER_NAME_${listener}_PLAIN_SASL_JAAS_CONFIG=$plain user_admin=\"$admin\" user_operator=\"$operator\";"
  export "KAFKA_LISTENER_NAME_${listener}_SCRAM___SHA___512_SASL_JAAS_CONFIG=$scram"
done
# What the health check connects as.
umask 077
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=%s;\n' "$plain" >/tmp/admin.properties
exec /__cacert_entrypoint.sh /etc/kafka/docker/run
