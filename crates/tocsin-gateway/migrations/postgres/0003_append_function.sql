-- One round trip for a run of plain publishes (store/postgres/append_run.rs).
--
-- Appending one notification from the gateway is five statements (idempotency
-- lookup, head advance, insert, idempotency insert, audit), each a network round trip
-- of its own; the writer's batch was limited by those round trips, not by the
-- database's work. This function takes a whole run of appends as arrays, one element
-- per notification, and does the same statements on the server.
--
-- `p_command` groups the notifications of one publish request (a batch publish is
-- atomic): each group runs in a BEGIN … EXCEPTION block, a subtransaction like the
-- savepoint the writer gives every command, so one refused request does not fail its
-- neighbours. A refused group answers one row: its first index, SQLSTATE and message.
-- Every other notification answers one row, in order: the stored (or, for a known
-- idempotency key, the earlier) id, stream, epoch and offset.
--
-- Scheduled publishes and proposals are not "plain" and keep the writer's
-- statement-by-statement path; the semantics of both paths are the store suite's.
CREATE FUNCTION tocsin_append(
    p_command INT[],
    p_stream TEXT[],
    p_id TEXT[],
    p_kind TEXT[],
    p_created_us BIGINT[],
    p_payload TEXT[],
    p_idem_scope TEXT[],
    p_idem_key TEXT[],
    p_tenant TEXT[],
    p_deadline_id TEXT[],
    p_dossier TEXT[],
    p_user_id TEXT[],
    p_actor TEXT[],
    p_detail TEXT[],
    p_new_epoch TEXT[]
) RETURNS TABLE (
    o_index INT,
    o_sqlstate TEXT,
    o_message TEXT,
    o_id TEXT,
    o_stream TEXT,
    o_epoch TEXT,
    o_offset BIGINT,
    o_duplicate BOOLEAN
)
LANGUAGE plpgsql AS $$
DECLARE
    total INT := coalesce(array_length(p_command, 1), 0);
    first_i INT := 1;
    last_i INT;
    i INT;
    done_id TEXT[];
    done_stream TEXT[];
    done_epoch TEXT[];
    done_offset BIGINT[];
    done_duplicate BOOLEAN[];
    known_id TEXT;
    known_stream TEXT;
    known_offset BIGINT;
    known_epoch TEXT;
    head_epoch TEXT;
    head_offset BIGINT;
    failed_state TEXT;
    failed_message TEXT;
BEGIN
    WHILE first_i <= total LOOP
        last_i := first_i;
        WHILE last_i < total AND p_command[last_i + 1] = p_command[first_i] LOOP
            last_i := last_i + 1;
        END LOOP;
        done_id := '{}';
        done_stream := '{}';
        done_epoch := '{}';
        done_offset := '{}';
        done_duplicate := '{}';
        failed_state := NULL;
        BEGIN
            FOR i IN first_i..last_i LOOP
                known_id := NULL;
                IF p_idem_key[i] IS NOT NULL THEN
                    SELECT k.notification_id, k.stream, k.stream_offset, s.epoch
                      INTO known_id, known_stream, known_offset, known_epoch
                      FROM idempotency k JOIN streams s ON s.name = k.stream
                     WHERE k.scope = p_idem_scope[i] AND k.key = p_idem_key[i];
                END IF;
                IF known_id IS NOT NULL THEN
                    done_id := done_id || known_id;
                    done_stream := done_stream || known_stream;
                    done_epoch := done_epoch || known_epoch;
                    done_offset := done_offset || known_offset;
                    done_duplicate := done_duplicate || TRUE;
                    CONTINUE;
                END IF;
                -- The head row stays locked until commit: appends to one stream from
                -- every node commit in offset order, without gaps.
                UPDATE streams SET head = head + 1 WHERE name = p_stream[i]
                    RETURNING epoch, head INTO head_epoch, head_offset;
                IF NOT FOUND THEN
                    INSERT INTO streams (name, epoch, head, first)
                        VALUES (p_stream[i], p_new_epoch[i], 0, 1)
                        ON CONFLICT (name) DO NOTHING;
                    UPDATE streams SET head = head + 1 WHERE name = p_stream[i]
                        RETURNING epoch, head INTO head_epoch, head_offset;
                END IF;
                INSERT INTO notifications (stream, stream_offset, id, kind, created_us, payload)
                    VALUES (p_stream[i], head_offset, p_id[i], p_kind[i], p_created_us[i], p_payload[i]);
                IF p_idem_key[i] IS NOT NULL THEN
                    INSERT INTO idempotency (scope, key, notification_id, stream, stream_offset, created_us)
                        VALUES (p_idem_scope[i], p_idem_key[i], p_id[i], p_stream[i], head_offset, p_created_us[i]);
                END IF;
                IF p_tenant[i] IS NOT NULL THEN
                    INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, actor, detail)
                        VALUES (p_tenant[i], p_created_us[i], 'published', p_id[i], p_deadline_id[i],
                                p_dossier[i], p_user_id[i], p_actor[i], p_detail[i]);
                END IF;
                done_id := done_id || p_id[i];
                done_stream := done_stream || p_stream[i];
                done_epoch := done_epoch || head_epoch;
                done_offset := done_offset || head_offset;
                done_duplicate := done_duplicate || FALSE;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_message = MESSAGE_TEXT;
        END;
        IF failed_state IS NOT NULL THEN
            o_index := first_i;
            o_sqlstate := failed_state;
            o_message := failed_message;
            o_id := NULL;
            o_stream := NULL;
            o_epoch := NULL;
            o_offset := NULL;
            o_duplicate := NULL;
            RETURN NEXT;
        ELSE
            FOR i IN first_i..last_i LOOP
                o_index := i;
                o_sqlstate := NULL;
                o_message := NULL;
                o_id := done_id[i - first_i + 1];
                o_stream := done_stream[i - first_i + 1];
                o_epoch := done_epoch[i - first_i + 1];
                o_offset := done_offset[i - first_i + 1];
                o_duplicate := done_duplicate[i - first_i + 1];
                RETURN NEXT;
            END LOOP;
        END IF;
        first_i := last_i + 1;
    END LOOP;
END
$$;
